"""URIs to filesystems (local paths or ``s3://``) and atomic writes.

Every piece of the platform that touches storage goes through :func:`filesystem`, so local disk and
object storage behave the same. S3 credentials and the endpoint come from the standard AWS environment
chain (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``...), never from config files.
"""

from __future__ import annotations

import json
import os
import posixpath
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import fsspec
import pyarrow.fs as pafs

from omnivad.errors import StorageError

T = TypeVar("T")

#: Total seconds :func:`retrying` keeps retrying an S3 operation across an unreachable endpoint.
RETRY_SECONDS_ENV = "OMNIVAD_S3_RETRY_SECONDS"
#: botocore attempts per request (``retries.total_max_attempts``) and connect timeout in seconds.
ATTEMPTS_ENV = "OMNIVAD_S3_ATTEMPTS"
CONNECT_TIMEOUT_ENV = "OMNIVAD_S3_CONNECT_TIMEOUT"


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return ``(fs, path)`` for a local path or a remote URI (``s3://bucket/key``)."""
    if uri.startswith("s3://"):
        kwargs: dict[str, Any] = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            kwargs["client_kwargs"] = {"endpoint_url": endpoint}
        # botocore retries each request a few times; :func:`retrying` covers longer outages (a
        # restarting endpoint) for the platform's own writes, then fails with a clear StorageError.
        kwargs["config_kwargs"] = {
            "retries": {"total_max_attempts": int(os.environ.get(ATTEMPTS_ENV) or 5), "mode": "standard"},
            "connect_timeout": float(os.environ.get(CONNECT_TIMEOUT_ENV) or 10),
        }
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


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning "the endpoint is unreachable right now" (worth retrying), not "bad request"."""
    errs: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import botocore.exceptions as be

        errs += [be.ConnectionError, be.HTTPClientError]
    except ImportError:  # pragma: no cover - s3fs brings botocore
        pass
    try:
        import aiohttp

        errs.append(aiohttp.ClientConnectionError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from fsspec.exceptions import FSTimeoutError

        errs.append(FSTimeoutError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def uri_of(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """``path`` as a URI again (``s3://bucket/key`` for S3, the path itself locally)."""
    if _is_local(fs):
        return path
    proto = fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol
    return path if "://" in path else f"{proto}://{path}"


def retrying(fs: fsspec.AbstractFileSystem, path: str, what: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` (one storage operation on ``path``), retrying while the endpoint is unreachable.

    Local filesystems run ``fn`` once. For object storage, connection failures are retried with
    exponential backoff (0.25 s doubling, at most 5 s apart) for ``OMNIVAD_S3_RETRY_SECONDS`` in total
    (default 60); then a :class:`StorageError` naming the URI is raised.
    """
    if _is_local(fs):
        return fn()
    budget = float(os.environ.get(RETRY_SECONDS_ENV) or 60)
    transient = _transient_errors()
    start, delay, attempts = time.monotonic(), 0.25, 0
    while True:
        attempts += 1
        try:
            return fn()
        except transient as exc:
            elapsed = time.monotonic() - start
            if elapsed + delay > budget:
                raise StorageError(
                    f"{uri_of(fs, path)}: endpoint unreachable after {attempts} attempts over {elapsed:.1f}s "
                    f"while trying to {what} ({type(exc).__name__}: {exc}); retry budget {budget:g}s "
                    f"(set {RETRY_SECONDS_ENV} to change it)"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


#: Fault injection for tests: called as ``hook(tmp_path, fh)`` after the data of an atomic local write is
#: written and before it is synced and renamed; raising there (``OSError(errno.ENOSPC, ...)``) stands in for a
#: full disk. ``None`` in production.
write_fault_hook: Callable[[str, Any], None] | None = None


def write_bytes_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` so readers see either the old file or the whole new one.

    Locally: a temporary file ``.NAME.<uuid>.tmp`` in the same directory, then ``os.replace``; on every
    failure (disk full, the target is a directory, a signal) the temporary file is removed before the error
    propagates. On S3 a single PUT is already atomic.
    """
    parent = posixpath.dirname(path)
    try:
        if _is_local(fs):
            os.makedirs(parent, exist_ok=True)
            tmp = posixpath.join(parent, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    if write_fault_hook is not None:
                        write_fault_hook(tmp, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.remove(tmp)
                except OSError:
                    pass
                raise
        else:

            def put() -> None:
                with fs.open(path, "wb") as fh:
                    fh.write(data)

            retrying(fs, path, "write", put)
    except OSError as exc:
        raise StorageError(f"cannot write {uri_of(fs, path)}: {exc}") from exc


def write_json_atomic(fs: fsspec.AbstractFileSystem, path: str, obj: Any) -> None:
    write_bytes_atomic(fs, path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_bytes(fs: fsspec.AbstractFileSystem, path: str) -> bytes:
    """The whole file, retrying across an unreachable endpoint (see :func:`retrying`)."""

    def get() -> bytes:
        with fs.open(path, "rb") as fh:
            return fh.read()

    return retrying(fs, path, "read", get)


def read_json(fs: fsspec.AbstractFileSystem, path: str) -> Any:
    try:
        return json.loads(read_bytes(fs, path))
    except FileNotFoundError as exc:
        raise StorageError(f"{uri_of(fs, path)}: not found") from exc
    except json.JSONDecodeError as exc:
        raise StorageError(f"{uri_of(fs, path)}: not valid JSON ({exc})") from exc


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    proto = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in proto or "local" in proto
