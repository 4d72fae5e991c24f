import random

import pytest

from federation import html as module
from federation.html import ALLOWED_TAGS, html_to_text, sanitize_html


def test_script_and_style_removed_with_content():
    out = sanitize_html("<p>hi<script>alert('x')</script><style>p{color:red}</style></p>")
    assert out == "<p>hi</p>"
    assert "alert" not in sanitize_html("<script>alert(1)</script>")
    assert "color" not in sanitize_html("<style>p{color:red}</style>ok")


def test_allowed_tags_kept():
    html = (
        "<p>a<br><del>d</del><pre><code>c</code></pre><em>e</em><strong>s</strong><b>b</b><i>i</i><u>u</u></p>"
        '<ul><li>x</li></ul><ol start="3" reversed><li value="2">y</li></ol><blockquote>q</blockquote>'
    )
    out = sanitize_html(html)
    for tag in ALLOWED_TAGS - {"a", "span"}:
        assert f"<{tag}" in out, tag
    assert 'start="3"' in out and "reversed" in out and 'value="2"' in out


def test_links_and_classes():
    out = sanitize_html(
        '<a href="https://remote.example/@bob" class="u-url mention evil" rel="me" target="_blank" '
        'onclick="x()">@<span class="invisible bad">bob</span></a>'
    )
    assert 'href="https://remote.example/@bob"' in out
    assert 'rel="nofollow noopener noreferrer"' in out
    assert 'class="u-url mention"' in out and 'class="invisible"' in out
    assert "evil" not in out and "bad" not in out
    assert "onclick" not in out and "target" not in out


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>x</script>",
        "vbscript:x",
        "/relative",
    ],
)
def test_dangerous_urls_stripped(href):
    out = sanitize_html(f'<a href="{href}">x</a>')
    assert "href" not in out and ">x</a>" in out


def test_other_schemes_allowed():
    assert 'href="mailto:a@b.example"' in sanitize_html('<a href="mailto:a@b.example">m</a>')


def test_unknown_tags_unwrapped():
    out = sanitize_html(
        '<div><h1>T</h1><img src="https://x/y.png" onerror="x"><iframe src="x">z</iframe>ok</div>'
    )
    assert "<div" not in out and "<img" not in out and "<h1" not in out and "<iframe" not in out
    assert "T" in out and "ok" in out and "onerror" not in out


def test_empty():
    assert sanitize_html("") == "" and html_to_text("") == ""


def test_html_to_text():
    html = "<p>Hello &amp; <b>world</b><br>line two</p><p>para <a href='x'>link</a></p><ul><li>a</li><li>b</li></ul>"
    assert html_to_text(html) == "Hello & world\nline two\n\npara link\n\na\nb"
    assert html_to_text("<p>x<script>evil()</script><style>p{}</style></p>") == "x"
    assert html_to_text("plain &lt;text&gt;") == "plain <text>"


def test_html_to_text_reads_tags_and_text_itself_and_agrees_with_the_html_parser():
    """Well-formed tags and text (what sanitising leaves) are flattened without HTMLParser; anything
    else goes to it. Both give the same text, on random mixes of what posts and bios hold."""
    def by_the_parser(html: str) -> str:
        extractor = module._TextExtractor()
        extractor.feed(html)
        extractor.close()
        return tidy("".join(extractor.text.parts))

    def tidy(text: str) -> str:
        out = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
        while "\n\n\n" in out:
            out = out.replace("\n\n\n", "\n\n")
        return out.strip()

    pieces = ["<p>", "</p>", "<br>", "<br/>", "<br />", "<li>", "</li>", "<ul>", "</ul>", '<ol start="3">', "</ol>",
              "<blockquote>", "</blockquote>", '<a href="http://x/?a>b&amp;c" rel=\'x y\'>', "</a>",
              '<span class="h-card">', "</span>", "text", " more words ", "&amp;", "&lt;", "&#39;", "&nbsp;", "\n",
              "<pre>", "</pre>", "<div>", "</div>", "<P>", "</P>", "<script>x<y</script>", "<!-- c -->", "a < b", "<",
              ">", "<h1>", "</h1>", "&bogus;", "&amp", "<a href=x>", '<a\nhref="y"\n>', "<img src=x>", "<1>"]
    rng = random.Random(12)
    flattened_here = 0
    for _ in range(3000):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        for html in (raw, sanitize_html(raw)):
            assert html_to_text(html) == by_the_parser(html), html
            flattened_here += module._flatten(html) is not None
    assert flattened_here > 3000  # every sanitised one, at least
    assert module._flatten('<p>a <a href="https://x.example/?q=1>2" class="mention">@b</a></p>') == ["a ", "@b", "\n\n"]
