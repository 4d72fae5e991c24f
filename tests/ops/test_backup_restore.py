"""`crosstalk admin backup/restore/export-user` against real instances."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
import requests

from tests.conftest import Instance


def png_bytes(color: tuple[int, int, int]) -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(out, "PNG")
    return out.getvalue()


def upload(api, color: tuple[int, int, int]) -> dict:
    media = api.media_post(png_bytes(color), mime_type="image/png", description="a test image")
    return media


def database_files(backup: Path) -> list[str]:
    """The files holding a backup's database (one SQLite file, or one file per PostgreSQL table),
    relative to the backup, largest first."""
    section = json.loads((backup / "manifest.json").read_text())["database"]
    if "tables" in section:
        files = [f"{section['directory']}/{t['file']}" for t in section["tables"]]
    else:
        files = [section["file"]]
    return sorted(files, key=lambda f: -(backup / f).stat().st_size)


def all_statuses(api, account_id: str) -> list[dict]:
    page = api.account_statuses(account_id, limit=40)
    return api.fetch_remaining(page) if page else []


@pytest.fixture
def same_domain():
    """Instances serving an existing instance's domain from another data directory."""
    made: list[Instance] = []

    def make(original: Instance, data_dir) -> Instance:
        inst = Instance(data_dir, {}, port=original.port)
        made.append(inst)
        return inst

    yield make
    for inst in made:
        inst.dispose()


def test_backup_while_posting_restores_to_a_consistent_database(make_instance, same_domain, tmp_path):
    a = make_instance("a")
    a.create_user("alice")
    token = a.token("alice")
    # Media files beside the database travel with the backup.
    picture = upload(a.api("alice"), (200, 30, 30))
    with_picture = a.api("alice").status_post("with a picture", media_ids=[picture["id"]])
    picture_bytes = requests.get(picture["url"], timeout=5).content
    assert len(picture_bytes) > 50
    for i in range(150):  # enough pages that the copy takes many steps
        requests.post(f"{a.base_url}/api/v1/statuses", data={"status": f"before {i} " + "x" * 400},
                      headers={"Authorization": f"Bearer {token}"}, timeout=10).raise_for_status()

    stop = threading.Event()
    written: list[str] = []
    errors: list[str] = []

    def writer() -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set():
            answer = session.post(f"{a.base_url}/api/v1/statuses", data={"status": f"during {n}"},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=10)
            if answer.status_code != 200:
                errors.append(answer.text)
                return
            written.append(answer.json()["id"])
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 5:
            stop.wait(0.02)
        before = len(written)
        result = a.cli("admin", "backup", str(tmp_path / "backup"), "--pages-per-step", "8")
        after = len(written)
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors
    assert after > before, "the writer should have kept posting while the backup ran"

    # Progress went to stderr, step by step, and ended at 100 %.
    progress = [line for line in result.stderr.splitlines() if line.startswith("database:")]
    assert progress and progress[-1].startswith("database: 100%"), result.stderr
    assert "files: 100%" in result.stderr
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["format"] == "crosstalk-backup" and manifest["domain"] == a.domain
    assert manifest["schema_version"] >= 1 and manifest["files"]["count"] >= 1
    assert manifest["files"]["missing_media"] == 0
    assert "written to" in result.stdout

    # Another machine: the same domain (and port), a new empty data directory.
    other = make_instance("other", start=False)
    wrong = other.cli("admin", "restore", str(tmp_path / "backup"), check=False)
    assert wrong.returncode == 1 and f"set CROSSTALK_DOMAIN={a.domain}" in wrong.stderr
    a.stop()
    b = same_domain(a, tmp_path / "b")
    restored = b.cli("admin", "restore", str(tmp_path / "backup"))
    assert "restored the backup" in restored.stdout
    if b.on_postgres:  # every table holds what the backup says it had
        for table in manifest["database"]["tables"]:
            assert b.sql(f"SELECT count(*) FROM {table['name']}") == [(table["rows"],)], table["name"]
    else:
        assert b.sql("PRAGMA integrity_check") == [("ok",)]

    b.start()
    api = b.api("alice")
    me = api.account_verify_credentials()
    posts = all_statuses(api, me["id"])
    # One snapshot: the denormalised counter agrees with the rows, and the posts present are exactly
    # the first N written, N between what existed when the backup began and when it ended.
    assert me["statuses_count"] == len(posts)
    during = sorted(int(p["id"]) for p in posts if p["content"].startswith("<p>during"))
    assert before <= len(during) <= after
    assert during == sorted(int(i) for i in written[:len(during)])
    assert sum(1 for p in posts if p["content"].startswith("<p>before")) == 150
    restored_picture = api.status(with_picture["id"])["media_attachments"][0]
    assert requests.get(restored_picture["url"], timeout=5).content == picture_bytes
    assert requests.get(f"{b.base_url}/readyz", timeout=5).json()["status"] == "ok"


def test_restore_refuses_what_it_should(make_instance, same_domain, tmp_path):
    a = make_instance("a")
    a.create_user("alice")
    a.cli("admin", "backup", str(tmp_path / "good"))
    # A backup kept inside the data directory is not copied into the next one.
    inside = a.data_dir / "backups" / "today"
    assert "written to" in a.cli("admin", "backup", str(inside)).stdout
    assert not (inside / "files" / "backups").exists()
    assert (tmp_path / "good" / "manifest.json").exists()

    # Backing up into a directory that has something in it.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    refused = a.cli("admin", "backup", str(busy), check=False)
    assert refused.returncode == 1 and "is not empty" in refused.stderr

    # Restoring over existing data: the running instance's own directory.
    over = a.cli("admin", "restore", str(tmp_path / "good"), check=False)
    assert over.returncode == 1 and "is not empty" in over.stderr and "restore only into an empty" in over.stderr

    b = same_domain(a, tmp_path / "b")
    not_backup = b.cli("admin", "restore", str(busy), check=False)
    assert not_backup.returncode == 1 and "not a complete Crosstalk backup" in not_backup.stderr

    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "good", damaged, ignore=shutil.ignore_patterns("files"))
    with open(damaged / database_files(damaged)[0], "r+b") as fh:
        fh.seek(min(5000, fh.seek(0, 2) // 2))
        fh.write(b"garbage")
    bad = b.cli("admin", "restore", str(damaged), check=False)
    assert bad.returncode == 1 and "checksum" in bad.stderr
    assert not (b.data_dir / "crosstalk.sqlite3").exists()
    if b.on_postgres:
        assert b.sql("SELECT count(*) FROM accounts") == [(0,)]

    manifest = json.loads((tmp_path / "good" / "manifest.json").read_text())
    manifest["schema_version"] = 9999
    newer = tmp_path / "newer"
    shutil.copytree(tmp_path / "good", newer, ignore=shutil.ignore_patterns("files"))
    (newer / "manifest.json").write_text(json.dumps(manifest))
    refused_newer = b.cli("admin", "restore", str(newer), check=False)
    assert refused_newer.returncode == 1 and "newer than this Crosstalk" in refused_newer.stderr

    # The good one restores into the empty directory, after all those refusals left it empty.
    b.cli("admin", "restore", str(tmp_path / "good"))
    a.stop()
    b.start()
    assert b.api("alice").account_verify_credentials()["username"] == "alice"


def read_zip(path) -> tuple[dict, dict]:
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        docs = {n: json.loads(z.read(n)) for n in names if n.endswith(".json")}
        texts = {n: z.read(n) for n in names if not n.endswith(".json")}
    return docs, texts


def test_export_user_writes_an_activitystreams_archive(make_instance, tmp_path):
    inst = make_instance("a")
    for name in ("alice", "bob"):
        inst.create_user(name)
    alice, bob = inst.api("alice"), inst.api("bob")
    bob_id = bob.me()["id"]
    bob_post = bob.status_post("bob's news")
    alice.account_follow(bob_id)
    picture = upload(alice, (10, 120, 240))
    first = alice.status_post("Hello #fediverse @bob", visibility="public", media_ids=[picture["id"]])
    alice.status_post("only for followers", visibility="private")
    alice.status_favourite(bob_post["id"])
    alice.status_bookmark(bob_post["id"])
    alice.status_reblog(bob_post["id"])
    gone = alice.status_post("deleted later")
    alice.status_delete(gone["id"])

    out = tmp_path / "alice.zip"
    result = inst.cli("admin", "export-user", "alice", "--output", str(out))
    assert f"wrote {out}" in result.stdout and "3 activities" in result.stdout
    docs, texts = read_zip(out)
    assert set(docs) == {"actor.json", "outbox.json", "likes.json", "bookmarks.json", "followers.json"}

    actor = docs["actor.json"]
    assert actor["type"] == "Person" and actor["preferredUsername"] == "alice"
    assert actor["id"] == f"{inst.base_url}/users/alice" or actor["id"].endswith("/alice")

    outbox = docs["outbox.json"]
    assert outbox["type"] == "OrderedCollection" and outbox["totalItems"] == 3
    kinds = [item["type"] for item in outbox["orderedItems"]]
    assert kinds == ["Create", "Create", "Announce"]
    note = outbox["orderedItems"][0]["object"]
    assert note["type"] == "Note" and "Hello" in note["content"] and note["id"] == first["uri"]
    assert note["attributedTo"] == actor["id"]
    assert "https://www.w3.org/ns/activitystreams#Public" in note["to"]
    assert {t["type"] for t in note["tag"]} == {"Hashtag", "Mention"}
    attachment = note["attachment"][0]
    assert attachment["type"] == "Document" and attachment["name"] == "a test image"
    archived = "media/" + attachment["url"].split("/media/", 1)[1]
    assert texts[archived] == requests.get(attachment["url"], timeout=5).content
    private = outbox["orderedItems"][1]["object"]
    assert private["to"] == [actor["followers"]]
    assert outbox["orderedItems"][2]["object"] == bob_post["uri"]

    assert docs["likes.json"]["orderedItems"] == [bob_post["uri"]]
    assert docs["bookmarks.json"]["orderedItems"] == [bob_post["uri"]]
    rows = list(csv.reader(io.StringIO(texts["following_accounts.csv"].decode())))
    assert rows == [["Account address", "Show boosts", "Notify on new posts", "Languages"],
                    [f"bob@{inst.domain}", "true", "false", ""]]

    bob_zip = tmp_path / "bob.zip"
    inst.cli("admin", "export-user", "bob", "-o", str(bob_zip))
    bob_docs, _ = read_zip(bob_zip)
    assert bob_docs["followers.json"]["orderedItems"] == [actor["id"]]
    assert bob_docs["outbox.json"]["totalItems"] == 1

    missing = inst.cli("admin", "export-user", "nobody", check=False)
    assert missing.returncode == 1 and "no local user 'nobody'" in missing.stderr


def test_config_reference_matches_the_readme(make_instance):
    from pathlib import Path

    from server.settings import SETTINGS, settings_table_markdown
    inst = make_instance("a", start=False)
    table = inst.cli("admin", "config-reference").stdout.strip()
    assert table == settings_table_markdown()
    for s in SETTINGS:
        assert f"`{s.env}`" in table
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert table in readme, "README's configuration table is stale: run `python deploy/config_table.py`"
