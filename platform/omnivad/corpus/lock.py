"""One writer at a time: an exclusive lock file next to a corpus manifest.

:class:`CorpusLock` creates ``<root>/.omnivad-write.lock`` atomically (``O_CREAT | O_EXCL`` locally; on S3 a
conditional PUT, ``If-None-Match: *``) holding its owner (host, pid, command, time). A second writer polls until
the lock is released, at most ``timeout`` seconds (``OMNIVAD_LOCK_TIMEOUT``, default 60), then fails with a
:class:`CorpusError` naming the holder. A lock whose holder is a dead process on this host is stale: it is
broken with a warning on stderr and taken over. Locks of other hosts are never broken automatically (delete
the file once you know its holder is gone).
"""

from __future__ import annotations

import json
import os
import posixpath
import socket
import sys
import time
from typing import Any

import fsspec

from omnivad import storage
from omnivad.errors import CorpusError

LOCK_FILE = ".omnivad-write.lock"
TIMEOUT_ENV = "OMNIVAD_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
POLL_SECONDS = 0.2
#: Lock files this process holds right now (a lock naming this pid but not in here was left by an abandoned writer).
_HELD: set[str] = set()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _describe(holder: dict[str, Any]) -> str:
    since = holder.get("since")
    age = f", since {time.time() - float(since):.0f}s" if isinstance(since, (int, float)) else ""
    return f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('command', '?')}{age})"


class CorpusLock:
    """The write lock of the corpus at ``root`` (within ``fs``); :meth:`acquire` then :meth:`release`."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, uri: str, timeout: float | None = None) -> None:
        self.fs, self.root, self.uri = fs, root, uri
        self.path = posixpath.join(root, LOCK_FILE)
        env = os.environ.get(TIMEOUT_ENV)
        self.timeout = float(timeout if timeout is not None else (env if env else DEFAULT_TIMEOUT))
        self.held = False
        self._local = storage._is_local(fs)

    def _owner(self) -> bytes:
        cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "command": cmd or "python",
                           "since": time.time()}).encode()

    def _try_create(self) -> bool:
        data = self._owner()
        if self._local:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return True
        try:
            storage.retrying(self.fs, self.path, "create the write lock",
                             lambda: self.fs.pipe_file(self.path, data, mode="create"))
        except (FileExistsError, OSError) as exc:
            if isinstance(exc, FileExistsError) or "PreconditionFailed" in str(exc) or "412" in str(exc):
                return False
            raise
        return True

    def _holder(self) -> dict[str, Any] | None:
        try:
            raw = storage.read_bytes(self.fs, self.path)
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(raw or b"{}")
        except ValueError:
            holder = {}
        return holder if isinstance(holder, dict) else {}

    def acquire(self) -> None:
        if self._local:
            os.makedirs(self.root, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        while True:
            if self._try_create():
                self.held = True
                _HELD.add(self.path)
                return
            holder = self._holder()
            if holder is None:  # released between our attempt and the read
                continue
            pid = holder.get("pid")
            mine = pid == os.getpid() and self.path not in _HELD
            if (self._local and holder.get("host") == socket.gethostname() and isinstance(pid, int)
                    and (mine or not _pid_alive(pid))):
                why = "a writer of this process abandoned it" if mine else "that process is gone"
                print(f"omnivad: warning: {self.uri}: breaking the stale write lock of {_describe(holder)} "
                      f"({why})", file=sys.stderr, flush=True)
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            if time.monotonic() >= deadline:
                raise CorpusError(
                    f"{self.uri}: another writer holds the corpus ({_describe(holder)}; lock file {self.path}); "
                    f"waited {self.timeout:g}s (set {TIMEOUT_ENV} to wait longer; delete the lock file only if "
                    f"that writer is gone)"
                )
            time.sleep(POLL_SECONDS)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        _HELD.discard(self.path)
        try:
            self.fs.rm(self.path)
        except FileNotFoundError:
            pass
