"""Uploaded media in an S3-compatible bucket (AWS S3, MinIO, SeaweedFS, Ceph, Garage ...), so that every
host of an instance serves the same files. The MinIO client (Apache-2.0) speaks the protocol and signs
the requests; its calls block, so they run in a few threads of their own.

Files are served through /media/ as before: proxied from the bucket (the default: clients behind a
firewall never need to reach the object store, and URLs stay the instance's), or, with
media.s3_serve = redirect, by a short-lived signed URL on the object store.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from server.ports import StoredFile

log = logging.getLogger("crosstalk.media")
T = TypeVar("T")
CHUNK = 256 * 1024
REDIRECT_LIFETIME = timedelta(hours=1)


class S3Unavailable(Exception):
    """The bucket cannot be reached or used at start."""


class S3Files:
    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, *, region: str,
                 secure: bool, redirect: bool) -> None:
        import urllib3
        from minio import Minio  # only when the bucket is configured

        self.bucket = bucket
        self.redirect = redirect
        # A few quick retries: a request waiting on an object store that is down should fail soon.
        http = urllib3.PoolManager(maxsize=8, timeout=urllib3.Timeout(connect=5, read=60),
                                   retries=urllib3.Retry(total=2, backoff_factor=0.2,
                                                         status_forcelist=(500, 502, 503, 504)))
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                             region=region or None, http_client=http)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="s3")

    async def _run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args, **kwargs))

    async def start(self) -> None:
        try:
            if not await self._run(self._client.bucket_exists, self.bucket):
                await self._run(self._client.make_bucket, self.bucket)
        except Exception as exc:
            raise S3Unavailable(f"bucket {self.bucket!r}: {exc.__class__.__name__}: {exc}") from None

    async def close(self) -> None:
        self._executor.shutdown(wait=False)

    async def write(self, files: list[tuple[str, bytes, str]]) -> None:
        done: list[str] = []
        try:
            for name, data, content_type in files:
                await self._run(self._client.put_object, self.bucket, name, io.BytesIO(data), len(data),
                                content_type=content_type)
                done.append(name)
        except BaseException:
            await self.remove(done)
            raise

    async def remove(self, names: list[str]) -> None:
        for name in names:
            try:
                await self._run(self._client.remove_object, self.bucket, name)
            except Exception as exc:
                log.warning("could not remove media file %s from the bucket: %s", name, exc)

    async def read(self, name: str) -> bytes | None:
        response = await self._get(name)
        if response is None:
            return None
        try:
            data: bytes = await self._run(response.read)
            return data
        finally:
            response.close()
            response.release_conn()

    async def _get(self, name: str) -> Any:
        from minio.error import S3Error
        try:
            return await self._run(self._client.get_object, self.bucket, name)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise

    async def open(self, name: str) -> StoredFile | None:
        if self.redirect:
            url = await self._run(self._client.presigned_get_object, self.bucket, name, expires=REDIRECT_LIFETIME)
            return StoredFile(redirect=url)
        response = await self._get(name)
        if response is None:
            return None
        size = int(response.headers.get("Content-Length", "0"))
        return StoredFile(size=size, chunks=self._chunks(response))

    async def _chunks(self, response: Any) -> AsyncIterator[bytes]:
        try:
            while chunk := await self._run(response.read, CHUNK):
                yield chunk
        finally:
            response.close()
            response.release_conn()
