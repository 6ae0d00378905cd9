"""The one rule for names that become path components of a corpus (domains, splits, video ids, id prefixes).

Every writer (``corpus import``, ``jobs/extract.py``, ``corpus add-side``, poses, ``corpus synth``) checks its
names here before anything is written, and :class:`~omnivad.corpus.format.CorpusWriter` checks every video
again, so no name from user data (a list file, a labels CSV, ``--domain``) can leave the corpus root.

* **Names** (domain, split, id prefix): letters, digits, ``_``, ``-`` and ``.`` only, not only dots, at most
  :data:`MAX_NAME` characters. They become the ``domain=<name>`` / ``split=<name>`` directories.
* **Video ids**: file stems of real datasets carry ``#``, spaces, ``=``, ``(`` ... (XD-Violence's
  ``Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6``), so a video id may hold any printable character except
  the path separators ``/`` and ``\\``; it may not start with ``.`` (``..``, hidden files) and has at most
  :data:`MAX_VIDEO_ID` characters. A video id becomes a file name (``<video_id>.npy`` score and side-signal files).
"""

from __future__ import annotations

import re

from omnivad.errors import CorpusError

MAX_NAME = 128
MAX_VIDEO_ID = 200
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
NAME_RULE = "use letters, digits, '_', '-' or '.' only (not only dots)"
VIDEO_ID_RULE = "no '/', '\\' or control characters, not starting with '.', at most 200 characters"


def check_name(what: str, name: object, where: str = "") -> str:
    """``name`` if it is a valid domain/split/prefix name, else a :class:`CorpusError` naming ``what`` and ``where``."""
    prefix = f"{where}: " if where else ""
    if not isinstance(name, str) or not name or not NAME_RE.match(name) or set(name) == {"."} or len(name) > MAX_NAME:
        raise CorpusError(f"{prefix}{what} {name!r}: {NAME_RULE}, at most {MAX_NAME} characters")
    return name


def check_video_id(video_id: object, where: str = "") -> str:
    """``video_id`` if it is safe as a file name, else a :class:`CorpusError` naming it and ``where``."""
    prefix = f"{where}: " if where else ""
    ok = (
        isinstance(video_id, str)
        and 0 < len(video_id) <= MAX_VIDEO_ID
        and not video_id.startswith(".")
        and "/" not in video_id
        and "\\" not in video_id
        and all(ch.isprintable() for ch in video_id)
    )
    if not ok:
        raise CorpusError(f"{prefix}video id {video_id!r}: {VIDEO_ID_RULE}")
    return video_id  # type: ignore[return-value]
