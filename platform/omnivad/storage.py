"""URIs to filesystems (local paths or ``s3://``) and atomic writes.

Every piece of the platform that touches storage goes through :func:`filesystem`, so local disk and
object storage behave the same. S3 credentials and the endpoint come from the standard AWS environment
chain (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``...), never from config files.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from typing import Any

import fsspec
import pyarrow.fs as pafs

from omnivad.errors import StorageError


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return ``(fs, path)`` for a local path or a remote URI (``s3://bucket/key``)."""
    if uri.startswith("s3://"):
        kwargs: dict[str, Any] = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            kwargs["client_kwargs"] = {"endpoint_url": endpoint}
        # Retries cover a flaky or restarting endpoint; a dead one still fails with a clear error.
        kwargs["config_kwargs"] = {"retries": {"max_attempts": 5, "mode": "standard"}}
        fs = fsspec.filesystem("s3", **kwargs)
        return fs, uri[len("s3://"):].rstrip("/")
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    fs = fsspec.filesystem("file")
    return fs, os.path.abspath(os.path.expanduser(uri))


def arrow_filesystem(fs: fsspec.AbstractFileSystem) -> pafs.FileSystem:
    """A pyarrow filesystem for ``fs`` (what Ray Data and pyarrow.dataset take)."""
    if _is_local(fs):
        return pafs.LocalFileSystem()
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


def join(base: str, *parts: str) -> str:
    """Join URI/path components with ``/`` (works for local paths and object keys)."""
    return posixpath.join(base, *parts)


def write_bytes_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` so readers see either the old file or the whole new one.

    Locally: a temporary file in the same directory, then ``os.replace``. On S3 a single PUT is
    already atomic.
    """
    parent = posixpath.dirname(path)
    try:
        if _is_local(fs):
            os.makedirs(parent, exist_ok=True)
            tmp = posixpath.join(parent, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        else:
            with fs.open(path, "wb") as fh:
                fh.write(data)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc


def write_json_atomic(fs: fsspec.AbstractFileSystem, path: str, obj: Any) -> None:
    write_bytes_atomic(fs, path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(fs: fsspec.AbstractFileSystem, path: str) -> Any:
    try:
        with fs.open(path, "rb") as fh:
            return json.loads(fh.read())
    except FileNotFoundError as exc:
        raise StorageError(f"{path}: not found") from exc
    except json.JSONDecodeError as exc:
        raise StorageError(f"{path}: not valid JSON ({exc})") from exc


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    proto = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in proto or "local" in proto
