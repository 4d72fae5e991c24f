"""xtalk's readable output on known inputs: HTML → wrapped text, times, content warnings, threads, colour."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from clients.cli.render import Renderer, colour_wanted, html_to_text, relative_time

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# What Mastodon (and Crosstalk) put in `content`.
MENTION = ('<span class="h-card" translate="no"><a href="https://social.example/@bob" class="u-url mention">'
           '@<span>bob</span></a></span>')
HASHTAG = '<a href="https://social.example/tags/cats" class="mention hashtag" rel="tag">#<span>cats</span></a>'
LONG_LINK = ('<a href="https://example.org/a/very/long/path/to/somewhere" rel="nofollow noopener" target="_blank">'
             '<span class="invisible">https://</span><span class="ellipsis">example.org/a/very/long/pat</span>'
             '<span class="invisible">h/to/somewhere</span></a>')


def test_paragraphs_line_breaks_and_entities():
    html = "<p>Hello<br>world</p><p>Fish &amp; chips &lt;b&gt;bold&lt;/b&gt; &quot;q&quot; &#39;s&#39; &#x1F600;</p>"
    assert html_to_text(html) == "Hello\nworld\n\nFish & chips <b>bold</b> \"q\" 's' \U0001F600"


def test_links_mentions_and_hashtags():
    html = f"<p>{MENTION} look {HASHTAG} {LONG_LINK} and <a href=\"https://example.org/docs\">the docs</a></p>"
    assert html_to_text(html, width=200) == (
        "@bob look #cats https://example.org/a/very/long/path/to/somewhere and the docs <https://example.org/docs>")
    # A link whose text is its address is not repeated.
    assert html_to_text('<p><a href="https://example.org/x">https://example.org/x</a></p>') == "https://example.org/x"
    # Remote mentions keep their full handle.
    assert html_to_text('<p><a href="https://b.example/@ann" class="u-url mention">@<span>ann@b.example</span>'
                        '</a></p>') == "@ann@b.example"


def test_whitespace_is_collapsed_and_text_wrapped():
    words = " ".join(f"word{i}" for i in range(40))
    text = html_to_text(f"<p>  {words}\n\n  </p>", width=40)
    lines = text.splitlines()
    assert all(len(line) <= 40 for line in lines) and len(lines) > 5
    assert " ".join(lines) == words
    indented = html_to_text(f"<p>{words}</p>", width=40, indent="    ")
    assert all(line.startswith("    ") and len(line) <= 40 for line in indented.splitlines())
    # An address longer than the line is never broken.
    url = "https://example.org/" + "x" * 60
    assert url in html_to_text(f'<p>see <a href="{url}">{url}</a></p>', width=40).splitlines()


def test_quotes_lists_and_preformatted_text():
    html = ("<blockquote><p>quoted words</p></blockquote><ul><li>one</li><li>two</li></ul>"
            "<ol><li>first</li><li>second</li></ol><pre>  keep\n    this</pre><p>plain text outside tags")
    assert html_to_text(html) == ("> quoted words\n\n- one\n\n- two\n\n1. first\n\n2. second\n\n"
                                  "  keep\n    this\n\nplain text outside tags")
    assert html_to_text("") == "" and html_to_text("plain, no tags") == "plain, no tags"


def test_relative_times():
    assert relative_time("2024-05-01T11:59:58.000Z", NOW) == "now"
    assert relative_time("2024-05-01T11:59:15.000Z", NOW) == "45s"
    assert relative_time("2024-05-01T11:55:00.000Z", NOW) == "5m"
    assert relative_time("2024-05-01T09:00:00Z", NOW) == "3h"
    assert relative_time("2024-04-29T12:00:00+00:00", NOW) == "2d"
    assert relative_time("2024-01-02T00:00:00.000Z", NOW) == "2024-01-02"
    assert relative_time(None, NOW) == "?"


def _status(**fields):
    status = {"id": "1", "created_at": "2024-05-01T11:55:00.000Z", "visibility": "public",
              "account": {"username": "alice", "acct": "alice", "display_name": "Alice A."},
              "content": "<p>Hello &amp; welcome</p>", "spoiler_text": "", "media_attachments": [],
              "in_reply_to_id": None, "reblog": None, "replies_count": 0, "reblogs_count": 2,
              "favourites_count": 1}
    status.update(fields)
    return status


def test_status_layout_cw_media_and_boosts():
    r = Renderer(width=60, now=NOW)
    text = r.status(_status())
    assert text.splitlines() == ["Alice A. @alice · 5m · public · id 1", "  Hello & welcome", "  2 boosts · 1 fav"]

    folded = r.status(_status(spoiler_text="lunch", media_attachments=[
        {"type": "image", "description": "a sandwich", "url": "https://x/m.png"}]))
    assert "CW: lunch" in folded and "Hello" not in folded and "sandwich" not in folded
    assert "[content hidden, 15 characters; --expand shows it]" in folded
    shown = Renderer(width=60, now=NOW, expand=True).status(_status(spoiler_text="lunch", media_attachments=[
        {"type": "image", "description": "a sandwich", "url": "https://x/m.png"}]))
    assert "Hello & welcome" in shown and "[image] a sandwich  https://x/m.png" in shown

    boost = r.status({"id": "9", "created_at": "2024-05-01T11:00:00Z", "account": {"username": "bob", "acct": "bob"},
                      "reblog": _status()})
    assert boost.splitlines()[0] == "bob boosted · 1h" and "Alice A. @alice" in boost.splitlines()[1]


def test_thread_indentation():
    root = _status(id="1")
    reply = _status(id="2", in_reply_to_id="1")
    other = _status(id="3", in_reply_to_id="1")
    deep = _status(id="4", in_reply_to_id="3")
    heads = [line for line in Renderer(now=NOW).thread(reply, {"ancestors": [root], "descendants": [other, deep]})
             .splitlines() if "@alice" in line]
    assert heads == ["Alice A. @alice · 5m · public · id 1", "  > Alice A. @alice · 5m · public · id 2",
                     "  Alice A. @alice · 5m · public · id 3", "    Alice A. @alice · 5m · public · id 4"]


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_wanted(Tty()) is True
    assert colour_wanted(io.StringIO()) is False
    assert colour_wanted(Tty(), flag=False) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert colour_wanted(Tty()) is False and colour_wanted(Tty(), flag=True) is False

    assert "\x1b[" in Renderer(colour=True, now=NOW).status(_status())
    assert "\x1b[" not in Renderer(colour=False, now=NOW).status(_status())
