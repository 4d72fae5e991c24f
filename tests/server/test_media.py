"""Media uploads, avatars and headers, the files' serving and clean-up, against a real instance."""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mastodon import MastodonAPIError, MastodonNotFoundError
from PIL import Image

from tests.conftest import Instance

PASSWORD = "correct horse battery"


def jpeg(width: int = 1200, height: int = 800, colour: tuple[int, int, int] = (200, 30, 30),
         orientation: int = 1) -> bytes:
    """A JPEG carrying EXIF with a camera name and GPS position, and a comment."""
    img = Image.new("RGB", (width, height), colour)
    exif = Image.Exif()
    exif[0x010F] = "SECRETCAMERA"
    exif[0x0112] = orientation
    exif.get_ifd(0x8825)[2] = (52.0, 31.0, 12.0)  # GPSLatitude
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), comment=b"SECRETCOMMENT", quality=90)
    return out.getvalue()


def png(width: int = 300, height: int = 200, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (10, 120, 200) if mode == "RGB" else (10, 120, 200, 128)).save(out, "PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims huge dimensions: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
            + chunk(b"IEND", b""))


def animated_gif(frames: int = 4) -> bytes:
    images = [Image.new("RGB", (40, 30), (i * 50, 0, 255 - i * 50)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=90, loop=0, comment=b"SECRETGIF")
    return out.getvalue()


def media_files(data_dir: Path) -> set[str]:
    root = data_dir / "media"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def fetch(url: str) -> requests.Response:
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, (url, answer.status_code)
    return answer


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One server for the tests below that need no special settings (starting one costs seconds)."""
    inst = Instance(tmp_path_factory.mktemp("media") / "a", {})
    inst.start()
    yield inst
    inst.dispose()


@pytest.fixture(scope="module")
def users(instance: Instance) -> dict[str, Any]:
    for name in ("alice", "bob"):
        instance.create_user(name, PASSWORD)
    return {name: instance.api(name) for name in ("alice", "bob")}


def test_upload_describe_and_post(instance, users):
    alice, bob = users["alice"], users["bob"]
    # Orientation 6 means "rotate 90°": the stored picture must be upright since its EXIF goes.
    media = alice.media_post(io.BytesIO(jpeg(orientation=6)), mime_type="image/jpeg", description="A red square",
                             focus=(0.5, -0.25), file_name="holiday.jpg")
    assert media["type"] == "image" and media["description"] == "A red square"
    assert media["meta"]["original"]["width"] == 800 and media["meta"]["original"]["height"] == 1200
    assert media["meta"]["small"]["height"] == 640 and media["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert len(media["blurhash"]) == 36
    assert media["url"].startswith(instance.base_url + "/media/attachments/") and media["url"].endswith(".jpg")

    served = fetch(media["url"])
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert b"SECRET" not in served.content and b"Exif" not in served.content
    assert Image.open(io.BytesIO(served.content)).size == (800, 1200)
    preview = fetch(media["preview_url"])
    assert Image.open(io.BytesIO(preview.content)).size == (427, 640)

    updated = alice.media_update(media["id"], description="A red rectangle", focus=(0.0, 0.1))
    assert updated["description"] == "A red rectangle" and updated["meta"]["focus"] == {"x": 0.0, "y": 0.1}
    status = alice.status_post("Look at this", media_ids=[media["id"]])
    attached = status["media_attachments"]
    assert [m["id"] for m in attached] == [media["id"]] and attached[0]["description"] == "A red rectangle"
    assert bob.status(status["id"])["media_attachments"][0]["url"] == media["url"]
    assert alice.status(status["id"])["media_attachments"][0]["blurhash"] == media["blurhash"]

    # Attached media is part of the post now: no more changes, no second use, nobody else's.
    with pytest.raises(MastodonNotFoundError):
        alice.media_update(media["id"], description="changed afterwards")
    with pytest.raises(MastodonAPIError, match="already attached"):
        alice.status_post("again", media_ids=[media["id"]])
    with pytest.raises(MastodonAPIError, match="not found"):
        bob.status_post("stolen", media_ids=[media["id"]])

    # Delete and redraft keeps the picture.
    alice.status_delete(status["id"])
    redraft = alice.status_post("Look at this (fixed)", media_ids=[media["id"]])
    assert redraft["media_attachments"][0]["id"] == media["id"]
    fetch(media["url"])

    # Animated GIFs stay animated; metadata goes.
    gif = alice.media_post(io.BytesIO(animated_gif()), mime_type="image/gif")
    body = fetch(gif["url"]).content
    assert b"SECRET" not in body and Image.open(io.BytesIO(body)).n_frames == 4
    assert gif["meta"]["original"]["frames"] == 4

    # The v1 endpoint, a PNG with transparency, and GET /api/v1/media/:id.
    token = alice.access_token
    answer = requests.post(f"{instance.base_url}/api/v1/media", headers={"Authorization": f"Bearer {token}"},
                           files={"file": ("x.png", png(mode="RGBA"), "image/png")}, timeout=10)
    assert answer.status_code == 200, answer.text
    got = requests.get(f"{instance.base_url}/api/v1/media/{answer.json()['id']}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert got.status_code == 200 and got.json()["url"].endswith(".png")
    assert fetch(got.json()["preview_url"]).headers["Content-Type"] == "image/png"
    other = requests.get(f"{instance.base_url}/api/v1/media/{answer.json()['id']}",
                         headers={"Authorization": f"Bearer {bob.access_token}"}, timeout=10)
    assert other.status_code == 404


def test_bad_uploads_are_refused_and_leave_nothing(instance, users):
    alice = users["alice"]
    url = f"{instance.base_url}/api/v2/media"
    auth = {"Authorization": f"Bearer {alice.access_token}"}
    before = media_files(instance.data_dir)

    def upload(data: bytes, name: str = "file.png", mime: str = "image/png", **fields: str) -> requests.Response:
        return requests.post(url, headers=auth, files={"file": (name, data, mime)}, data=fields, timeout=30)

    good = jpeg()
    refused = {
        "text named .png": upload(b"just some text, honestly", "notes.png"),
        "html named .jpg": upload(b"<html><script>alert(1)</script></html>", "x.jpg", "image/jpeg"),
        "empty": upload(b""),
        "truncated jpeg": upload(good[: len(good) // 2], "cut.jpg", "image/jpeg"),
        "decompression bomb": upload(png_header_only(30000, 30000), "bomb.png"),
        "just over the pixel limit": upload(png_header_only(6000, 6000), "big.png"),
        "gif header only": upload(b"GIF89a" + b"\x00" * 30, "x.gif", "image/gif"),
        "long description": upload(png(), description="x" * 1501),
        "bad focus": upload(png(), focus="2,0"),
        "no file": requests.post(url, headers=auth, data={"description": "nothing"}, timeout=10),
        "json body": requests.post(url, headers=auth, json={"file": "aGVsbG8="}, timeout=10),
    }
    for what, answer in refused.items():
        assert answer.status_code == 422, (what, answer.status_code, answer.text)
        assert answer.json()["error"], what
    assert media_files(instance.data_dir) == before

    # The type comes from the bytes: PNG data named .jpg is a PNG.
    answer = upload(png(), "photo.jpg", "image/jpeg")
    assert answer.status_code == 200, answer.text
    assert answer.json()["url"].endswith(".png")
    assert fetch(answer.json()["url"]).headers["Content-Type"] == "image/png"

    for path in ("/media/../crosstalk.sqlite3", "/media/%2e%2e/crosstalk.sqlite3",
                 "/media/attachments/00/" + "0" * 32 + ".jpg", "/media/attachments"):
        assert requests.get(instance.base_url + path, timeout=10).status_code == 404, path
    assert requests.post(url, files={"file": ("x.png", png(), "image/png")}, timeout=10).status_code == 401


def test_limits_come_from_configuration(make_instance):
    inst = make_instance("limits", env={"CROSSTALK_MEDIA_MAX_IMAGE_SIZE": "150000",
                                        "CROSSTALK_MEDIA_MAX_IMAGE_PIXELS": "1000000"})
    config = requests.get(f"{inst.base_url}/api/v2/instance", timeout=10).json()["configuration"]
    assert config["media_attachments"]["image_size_limit"] == 150000
    assert config["media_attachments"]["image_matrix_limit"] == 1000000
    inst.create_user("alice", PASSWORD)
    auth = {"Authorization": f"Bearer {inst.token('alice')}"}
    url = f"{inst.base_url}/api/v2/media"
    noisy = io.BytesIO()
    Image.effect_noise((400, 400), 80).convert("RGB").save(noisy, "PNG")
    assert len(noisy.getvalue()) > 150000
    too_big = requests.post(url, headers=auth, files={"file": ("n.png", noisy.getvalue(), "image/png")}, timeout=30)
    assert too_big.status_code == 422 and "too large" in too_big.json()["error"]
    too_wide = requests.post(url, headers=auth, files={"file": ("w.png", png(1100, 1000), "image/png")}, timeout=30)
    assert too_wide.status_code == 422 and "pixels" in too_wide.json()["error"]
    fine = requests.post(url, headers=auth, files={"file": ("ok.png", png(1000, 1000), "image/png")}, timeout=30)
    assert fine.status_code == 200, fine.text
    assert media_files(inst.data_dir) == {fine.json()["url"].split("/media/")[1],
                                          fine.json()["preview_url"].split("/media/")[1]}


def test_avatar_and_header(instance, users):
    alice, bob = users["alice"], users["bob"]
    me = alice.account_update_credentials(avatar=io.BytesIO(jpeg(900, 600)), avatar_mime_type="image/jpeg",
                                          header=io.BytesIO(png(3000, 1500)), header_mime_type="image/png")
    assert "/media/avatars/" in me["avatar"] and "/media/headers/" in me["header"]
    avatar = fetch(me["avatar"])
    assert b"SECRET" not in avatar.content
    assert Image.open(io.BytesIO(avatar.content)).size == (400, 400)
    assert Image.open(io.BytesIO(fetch(me["header"]).content)).size == (1500, 500)
    assert bob.account(me["id"])["avatar"] == me["avatar"]

    # A new avatar replaces the old file; a bad one changes nothing and leaves nothing behind.
    again = alice.account_update_credentials(avatar=io.BytesIO(png(500, 500)), avatar_mime_type="image/png")
    assert again["avatar"] != me["avatar"] and again["header"] == me["header"]
    assert requests.get(me["avatar"], timeout=10).status_code == 404
    files = media_files(instance.data_dir)
    with pytest.raises(MastodonAPIError, match="Avatar"):
        alice.account_update_credentials(avatar=io.BytesIO(b"not an image"), avatar_mime_type="image/png",
                                         display_name="Changed")
    with pytest.raises(MastodonAPIError, match="Display name"):
        alice.account_update_credentials(avatar=io.BytesIO(png()), avatar_mime_type="image/png",
                                         display_name="x" * 31)
    assert media_files(instance.data_dir) == files
    assert alice.me()["avatar"] == again["avatar"] and alice.me()["display_name"] == ""

    cleared = requests.delete(f"{instance.base_url}/api/v1/profile/avatar",
                              headers={"Authorization": f"Bearer {alice.access_token}"}, timeout=10)
    assert cleared.status_code == 200 and cleared.json()["avatar"].endswith("/static/avatar.png")
    assert requests.get(again["avatar"], timeout=10).status_code == 404
    assert cleared.json()["header"] == me["header"]


def test_unused_uploads_are_cleaned_up(make_instance):
    inst = make_instance("cleanup", env={"CROSSTALK_MEDIA_UNATTACHED_TTL": "2"})
    inst.create_user("alice", PASSWORD)
    alice = inst.api("alice")
    kept = alice.media_post(io.BytesIO(png()), mime_type="image/png")
    post = alice.status_post("keep this", media_ids=[kept["id"]])
    deleted_post = alice.status_post("delete this",
                                     media_ids=[alice.media_post(io.BytesIO(png()), mime_type="image/png")["id"]])
    orphan = alice.media_post(io.BytesIO(jpeg()), mime_type="image/jpeg")
    alice.status_delete(deleted_post["id"])
    gone_url = deleted_post["media_attachments"][0]["url"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(requests.get(u, timeout=5).status_code == 404 for u in (orphan["url"], gone_url)):
            break
        time.sleep(0.5)
    for url in (orphan["url"], orphan["preview_url"], gone_url):
        assert requests.get(url, timeout=5).status_code == 404, url
    with pytest.raises(MastodonNotFoundError):
        alice.media_update(orphan["id"], description="too late")
    assert alice.status(post["id"])["media_attachments"][0]["id"] == kept["id"]
    fetch(kept["url"])
    fetch(kept["preview_url"])
    assert len(media_files(inst.data_dir)) == 2


def test_blurhash_matches_the_reference_encoder():
    """Hashes computed with the reference implementation (the `blurhash` package) for the same pixels."""
    from server.services.images import blurhash_encode
    rng = random.Random(3)
    pixels = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(20 * 15)]
    assert blurhash_encode(pixels, 20, 15) == "UAH2.ixz*%%L?F#7#R%NPKI.vz-T*0;ROGIX"
    assert blurhash_encode([(200, 30, 30)] * 300, 20, 15) == "UCM^z|]TfQ]T|wo1fQo1fQfQfQfQ|wo1fQo1"


def test_the_public_timeline_with_only_media_lists_each_post_with_media_once_newest_first(instance, users):
    alice, bob = users["alice"], users["bob"]

    def picture(api: Any) -> Any:
        return api.media_post(io.BytesIO(png()), mime_type="image/png")

    start = alice.status_post("Before the media posts")["id"]
    first = alice.status_post("Two pictures", media_ids=[picture(alice), picture(alice)])["id"]
    alice.status_post("No picture")
    bob.status_post("Followers only", media_ids=[picture(bob)], visibility="private")
    bob.status_post("Unlisted", media_ids=[picture(bob)], visibility="unlisted")
    second = bob.status_post("One picture", media_ids=[picture(bob)])["id"]
    gone = bob.status_post("Deleted picture", media_ids=[picture(bob)])["id"]
    bob.status_delete(gone)
    third = alice.status_post("Last picture", media_ids=[picture(alice)])["id"]

    def ids(page: list[Any]) -> list[Any]:
        return [s["id"] for s in page]

    assert ids(bob.timeline_public(only_media=True, since_id=start)) == [third, second, first]
    assert ids(bob.timeline_public(only_media=True, since_id=start, limit=2)) == [third, second]
    assert ids(bob.timeline_public(only_media=True, since_id=start, max_id=second)) == [first]
    assert ids(bob.timeline_public(only_media=True, min_id=start, limit=2)) == [second, first]
    assert ids(alice.timeline_local(only_media=True, since_id=start)) == [third, second, first]
    assert ids(alice.timeline_public(only_media=True, remote=True, since_id=start)) == []
    anonymous = requests.get(f"{instance.base_url}/api/v1/timelines/public",
                             params={"only_media": "true", "since_id": start}, timeout=10)
    assert [s["id"] for s in anonymous.json()] == [str(third), str(second), str(first)]
    assert len(ids(bob.timeline_public(since_id=start))) == 4  # the post without a picture is there


def test_a_profiles_pinned_and_media_tabs_list_the_right_posts_for_each_viewer(instance, users):
    alice, bob = users["alice"], users["bob"]
    me = alice.me()["id"]

    def picture() -> Any:
        return alice.media_post(io.BytesIO(png()), mime_type="image/png")

    question = bob.status_post("Bob asks")["id"]
    start = alice.status_post("Profile tabs start")["id"]
    plain = alice.status_post("Plain")["id"]
    two = alice.status_post("Two pictures", media_ids=[picture(), picture()])["id"]
    private = alice.status_post("Followers see this picture", media_ids=[picture()], visibility="private")["id"]
    reply = alice.status_post("@bob a reply with a picture", media_ids=[picture()], in_reply_to_id=question)["id"]
    last = alice.status_post("Last picture", media_ids=[picture()])["id"]
    for sid in (plain, two, last):
        alice.status_pin(sid)

    def ids(page: list[Any]) -> list[Any]:
        return [s["id"] for s in page]

    assert ids(alice.account_statuses(me, only_media=True, since_id=start)) == [last, reply, private, two]
    assert ids(bob.account_statuses(me, only_media=True, since_id=start)) == [last, reply, two]
    assert ids(bob.account_statuses(me, only_media=True, exclude_replies=True, since_id=start)) == [last, two]
    assert ids(alice.account_statuses(me, only_media=True, since_id=start, limit=2)) == [last, reply]
    assert ids(bob.account_statuses(me, only_media=True, since_id=start, max_id=reply)) == [two]
    assert ids(alice.account_statuses(me, only_media=True, min_id=start, limit=2)) == [private, two]
    assert ids(bob.account_statuses(me, pinned=True, since_id=start)) == [last, two, plain]
    assert ids(bob.account_statuses(me, pinned=True, only_media=True, since_id=start)) == [last, two]
    assert ids(bob.account_statuses(me, pinned=True, since_id=start, limit=1)) == [last]
    assert ids(bob.account_statuses(question_author := bob.me()["id"], pinned=True)) == []
    assert question_author != me

    alice.status_unpin(two)
    alice.status_delete(last)
    assert ids(bob.account_statuses(me, pinned=True, since_id=start)) == [plain]
    assert ids(bob.account_statuses(me, only_media=True, since_id=start)) == [reply, two]


def test_a_hashtag_timeline_takes_any_all_none_only_media_and_paging(instance, users):
    alice, bob = users["alice"], users["bob"]
    g = alice.status_post("#garden plans")["id"]
    k = bob.status_post("#kitchen rota")["id"]
    gk = alice.status_post("#garden and #kitchen")["id"]
    gr = bob.status_post("#garden #roof with a picture",
                         media_ids=[bob.media_post(io.BytesIO(png()), mime_type="image/png")])["id"]
    alice.status_post("#garden #kitchen #roof but followers only", visibility="private")

    def tag(name: str, **query: Any) -> list[str]:
        answer = requests.get(f"{instance.base_url}/api/v1/timelines/tag/{name}", params=query, timeout=10)
        assert answer.status_code == 200, answer.text
        return [s["id"] for s in answer.json()]

    g, k, gk, gr = (str(i) for i in (g, k, gk, gr))
    assert [str(s["id"]) for s in bob.timeline_hashtag("garden")] == [gr, gk, g]
    assert tag("garden", **{"any[]": "kitchen"}) == [gr, gk, k, g]
    assert tag("garden", **{"all[]": "kitchen"}) == [gk]
    assert tag("garden", **{"none[]": "kitchen"}) == [gr, g]
    assert tag("garden", **{"any[]": ["kitchen", "#nosuchtag"], "none[]": "roof"}) == [gk, k, g]
    assert tag("garden", **{"all[]": ["kitchen", "roof"]}) == []
    assert tag("garden", **{"all[]": "nosuchtag"}) == []
    assert tag("nosuchtag", **{"any[]": "kitchen"}) == [gk, k]
    assert tag("garden", only_media="true") == [gr]
    assert tag("garden", remote="true") == [] and tag("garden", local="true") == [gr, gk, g]
    assert tag("garden", limit=2, **{"any[]": "kitchen"}) == [gr, gk]
    assert tag("garden", limit=2, max_id=gk, **{"any[]": "kitchen"}) == [k, g]
    assert tag("garden", limit=2, min_id=g, **{"any[]": "kitchen"}) == [gk, k]
    assert tag("garden", since_id=k, **{"any[]": "kitchen"}) == [gr, gk]
