"""Import pre-extracted WVAD features into an omnivad corpus.

Two source layouts are understood (see ``datasets/IMPORTING.md``):

``rtfm``
    A ``.list`` file with one ``.npy`` path per line; each file holds one video's features as
    ``(T, crops, C)`` or ``(T, C)``. ``video_id`` is the file name without ``.npy``. Labels come from a
    concatenated frame-level ground truth (``gt``), a CSV (``labels``), a regex on the name
    (``abnormal_pattern``) or the RTFM convention that the first N lines are abnormal (``abnormal_first``).
``xd``
    XD-Violence: one ``(T, C)`` file per crop, ``NAME__0.npy`` ... ``NAME__4.npy``, one line per crop
    file. Lines are grouped by ``NAME`` and stacked to ``(T, crops, C)``; labels and categories are
    decoded from ``NAME`` (``label_A`` normal, ``label_B1-B2-0`` abnormal, ...).

The import is one transaction: pass 1 reads only ``.npy`` headers and validates the whole list
(files, ranks, dims, crop counts, ground-truth length, duplicate ids, labels); pass 2 loads the
arrays, rejects NaN/Inf and writes through :class:`~omnivad.corpus.format.CorpusWriter`. Any error
aborts the writer, so an existing corpus is left byte-for-byte as it was and a new corpus directory
is not left behind. Arrays are always loaded with ``allow_pickle=False``.

:func:`add_side_signals` attaches per-snippet side signals (optical-flow magnitude ``flow`` (T,), detector
class scores ``objects`` (T, W)) from one ``<video_id>.npy`` per video to an imported domain
(``omnivad corpus add-side``).
"""

from __future__ import annotations

import csv
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnivad.corpus.format import FRAMES_PER_SNIPPET, SIDE_SIGNALS, Corpus, CorpusWriter, Manifest, Video, check_side
from omnivad.corpus.names import check_name, check_video_id
from omnivad.errors import CorpusError

FORMATS = ("rtfm", "xd")

#: XD-Violence category codes (the ``label_...`` part of a file name); ``0`` means "no category".
XD_CATEGORIES: dict[str, str] = {
    "B1": "Fighting",
    "B2": "Shooting",
    "B4": "Riot",
    "B5": "Abuse",
    "B6": "Car accident",
    "G": "Explosion",
}

_XD_CROP_RE = re.compile(r"^(?P<name>.+)__(?P<crop>\d+)$")
_XD_LABEL_RE = re.compile(r"label_(?P<codes>[A-Za-z0-9\-]+)$")
_MAX_LISTED = 5  # missing files named in one error message


# --------------------------------------------------------------------------------------------------
# Small parsers (public: the tests and ``corpus info`` use them)


def xd_label_from_name(name: str) -> tuple[int, list[str]]:
    """``(label, categories)`` decoded from an XD-Violence video name.

    ``...label_A`` is normal (``(0, [])``); ``...label_B2-G-0`` is abnormal with the categories of the
    codes in order (``(1, ["Shooting", "Explosion"])``). A crop suffix ``__k`` and ``.npy`` are ignored.
    """
    stem = _strip_npy(os.path.basename(name))
    m = _XD_CROP_RE.match(stem)
    if m:
        stem = m.group("name")
    lm = _XD_LABEL_RE.search(stem)
    if not lm:
        raise CorpusError(f"XD video {stem!r}: name does not end in 'label_<codes>' (e.g. label_A, label_B1-0-0)")
    codes = lm.group("codes").split("-")
    if codes == ["A"]:
        return 0, []
    cats: list[str] = []
    for code in codes:
        if code == "0":
            continue
        if code not in XD_CATEGORIES:
            raise CorpusError(
                f"XD video {stem!r}: unknown category code {code!r} "
                f"(known: A, {', '.join(XD_CATEGORIES)}, 0)"
            )
        if XD_CATEGORIES[code] not in cats:
            cats.append(XD_CATEGORIES[code])
    if not cats:
        raise CorpusError(f"XD video {stem!r}: label {lm.group('codes')!r} names no category and is not 'A'")
    return 1, cats


@dataclass
class ListLine:
    lineno: int  # 1-based line number in the list file
    raw: str  # the line as written (stripped)
    path: Path  # after --root rewriting, resolved


def read_list(list_path: str | os.PathLike[str], roots: Iterable[Any] = ()) -> list[ListLine]:
    """Non-blank lines of a ``.list`` file with their line numbers and rewritten paths.

    ``roots`` is a sequence of ``(old_prefix, new_prefix)`` pairs (or ``"OLD=NEW"`` strings); the first
    prefix a line starts with is replaced. Relative paths are resolved against the list's directory.
    """
    lp = Path(list_path)
    if not lp.is_file():
        raise CorpusError(f"{lp}: list file not found")
    pairs = _parse_roots(roots)
    try:
        text = lp.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{lp}: cannot read list file: {exc}") from exc
    out: list[ListLine] = []
    for i, line in enumerate(text.splitlines(), start=1):
        raw = line.strip()
        if not raw:
            continue
        p = raw
        for old, new in pairs:
            if p.startswith(old):
                p = new + p[len(old):]
                break
        path = Path(os.path.expanduser(p))
        if not path.is_absolute():
            path = lp.parent / path
        out.append(ListLine(i, raw, path))
    if not out:
        raise CorpusError(f"{lp}: list file has no entries")
    return out


def _parse_roots(roots: Iterable[Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for r in roots or ():
        if isinstance(r, str):
            if "=" not in r:
                raise CorpusError(f"--root {r!r}: expected OLD=NEW")
            old, new = r.split("=", 1)
        else:
            old, new = r
        if not old:
            raise CorpusError(f"--root {old}={new}: the old prefix is empty")
        pairs.append((str(old), str(new)))
    return pairs


def read_labels_csv(path: str | os.PathLike[str]) -> dict[str, tuple[int, list[str]]]:
    """``video_id -> (label, categories)`` from ``video_id,label[,category]`` (header optional).

    Categories may be ``|``-separated; ``Normal`` is dropped for normal videos.
    """
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"{p}: labels CSV not found")
    out: dict[str, tuple[int, list[str]]] = {}
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{p}: cannot read labels CSV: {exc}") from exc
    for i, row in enumerate(rows, start=1):
        row = [c.strip() for c in row]
        if not row or all(not c for c in row) or row[0].startswith("#"):
            continue
        if len(row) < 2:
            raise CorpusError(f"{p}:{i}: expected video_id,label[,category], got {','.join(row)!r}")
        vid, lab = _strip_npy(row[0]), row[1]
        if lab not in ("0", "1"):
            if not out and i == _first_row(rows):  # a header line
                continue
            raise CorpusError(f"{p}:{i}: label of {vid!r} is {lab!r}, expected 0 or 1")
        label = int(lab)
        cats: list[str] = []
        if len(row) >= 3 and row[2]:
            cats = [c.strip() for c in row[2].split("|") if c.strip()]
            if label == 0:
                cats = [c for c in cats if c.lower() != "normal"]
        if vid in out and out[vid] != (label, cats):
            raise CorpusError(f"{p}:{i}: video {vid!r} listed twice with different labels/categories")
        out[vid] = (label, cats)
    if not out:
        raise CorpusError(f"{p}: labels CSV has no rows")
    return out


def _first_row(rows: Sequence[Sequence[str]]) -> int:
    for i, row in enumerate(rows, start=1):
        if row and any(c.strip() for c in row):
            return i
    return 0


def _strip_npy(name: str) -> str:
    return name[:-4] if name.endswith(".npy") else name


# --------------------------------------------------------------------------------------------------
# Pass 1: headers


@dataclass
class _Header:
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass
class _Entry:
    """One video to import: its crop files (1 for rtfm, k for xd) and what pass 1 learned."""

    video_id: str
    files: list[ListLine]
    n_snippets: int = 0
    n_crops: int = 0
    dim: int = 0
    label: int = 0
    categories: list[str] = field(default_factory=list)
    gt: np.ndarray | None = None


def _read_header(path: Path, where: str) -> _Header:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as exc:
        raise CorpusError(f"{where}: {path}: file not found") from exc
    except (ValueError, OSError, EOFError) as exc:
        raise CorpusError(f"{where}: {path}: not a readable numeric .npy array ({exc})") from exc
    if not isinstance(arr, np.ndarray):  # an .npz archive
        raise CorpusError(f"{where}: {path}: expected a .npy array, got {type(arr).__name__}")
    header = _Header(tuple(int(s) for s in arr.shape), arr.dtype)
    del arr
    if header.dtype.kind not in "fiu":
        raise CorpusError(f"{where}: {path}: dtype {header.dtype} is not numeric")
    return header


def _check_missing(lines: Sequence[ListLine], list_path: str) -> None:
    missing = [ln for ln in lines if not ln.path.is_file()]
    if not missing:
        return
    shown = "; ".join(f"line {ln.lineno}: {ln.path}" for ln in missing[:_MAX_LISTED])
    more = f" (and {len(missing) - _MAX_LISTED} more)" if len(missing) > _MAX_LISTED else ""
    hint = " — use --root OLD=NEW to rewrite the list's path prefixes" if len(missing) == len(lines) else ""
    raise CorpusError(f"{list_path}: {len(missing)} of {len(lines)} files not found: {shown}{more}{hint}")


def _rtfm_entries(lines: Sequence[ListLine], list_path: str) -> list[_Entry]:
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    for ln in lines:
        vid = _strip_npy(os.path.basename(ln.raw))
        if vid in seen:
            raise CorpusError(
                f"{list_path}:{ln.lineno}: duplicate video id {vid!r} (also on line {seen[vid]})"
            )
        seen[vid] = ln.lineno
        where = f"{list_path}:{ln.lineno}"
        h = _read_header(ln.path, where)
        if len(h.shape) == 2:
            t, k, c = h.shape[0], 1, h.shape[1]
        elif len(h.shape) == 3:
            t, k, c = h.shape
        else:
            raise CorpusError(
                f"{where}: {ln.path}: features have shape {h.shape} (rank {len(h.shape)}), "
                "expected (T, crops, C) or (T, C)"
            )
        entries.append(_Entry(vid, [ln], n_snippets=t, n_crops=k, dim=c))
    return entries


def _xd_entries(lines: Sequence[ListLine], list_path: str) -> list[_Entry]:
    groups: dict[str, dict[int, ListLine]] = {}
    for ln in lines:
        stem = _strip_npy(os.path.basename(ln.raw))
        m = _XD_CROP_RE.match(stem)
        if not m:
            raise CorpusError(
                f"{list_path}:{ln.lineno}: {ln.raw!r} is not an XD crop file (expected NAME__<k>.npy)"
            )
        name, crop = m.group("name"), int(m.group("crop"))
        crops = groups.setdefault(name, {})
        if crop in crops:
            raise CorpusError(
                f"{list_path}:{ln.lineno}: duplicate crop file {ln.raw!r} of video {name!r} "
                f"(crop {crop} also on line {crops[crop].lineno})"
            )
        crops[crop] = ln
    entries: list[_Entry] = []
    for name, crops in groups.items():
        ks = sorted(crops)
        if ks != list(range(len(ks))):
            raise CorpusError(
                f"{list_path}: video {name!r} has crop files {ks}, expected __0 .. __{len(ks) - 1} without gaps"
            )
        files = [crops[k] for k in ks]
        first: tuple[int, int] | None = None
        for ln in files:
            where = f"{list_path}:{ln.lineno}"
            h = _read_header(ln.path, where)
            if len(h.shape) != 2:
                raise CorpusError(
                    f"{where}: {ln.path}: XD crop features have shape {h.shape} (rank {len(h.shape)}), "
                    "expected (T, C)"
                )
            if first is None:
                first = (h.shape[0], h.shape[1])
            elif h.shape != first:
                raise CorpusError(
                    f"{list_path}: video {name!r}: crop files differ in shape: "
                    f"{files[0].path} is {first}, {ln.path} is {h.shape}"
                )
        assert first is not None
        label, cats = xd_label_from_name(name)
        entries.append(_Entry(name, files, n_snippets=first[0], n_crops=len(files), dim=first[1],
                              label=label, categories=cats))
    return entries


def _check_shapes(entries: Sequence[_Entry], list_path: str, existing: Manifest | None, domain: str,
                  average_crops: bool, out: str) -> None:
    ref = entries[0]
    for e in entries:
        f = e.files[0].path
        if e.n_snippets == 0:
            raise CorpusError(f"{list_path}:{e.files[0].lineno}: {f}: video {e.video_id!r} has T = 0 snippets")
        if e.dim == 0:
            raise CorpusError(f"{list_path}:{e.files[0].lineno}: {f}: video {e.video_id!r} has feature dim 0")
        if e.n_crops == 0:
            raise CorpusError(f"{list_path}:{e.files[0].lineno}: {f}: video {e.video_id!r} has 0 crops")
        if e.dim != ref.dim:
            raise CorpusError(
                f"{list_path}:{e.files[0].lineno}: {f}: video {e.video_id!r} has feature dim {e.dim}, "
                f"the first video ({ref.files[0].path}) has {ref.dim}"
            )
        if e.n_crops != ref.n_crops:
            raise CorpusError(
                f"{list_path}:{e.files[0].lineno}: {f}: video {e.video_id!r} has {e.n_crops} crops, "
                f"the first video ({ref.files[0].path}) has {ref.n_crops}"
            )
    if existing is not None:
        if existing.feature_dim != ref.dim:
            raise CorpusError(
                f"{out}: corpus feature_dim is {existing.feature_dim}, "
                f"the videos of {list_path} have {ref.dim} (e.g. {ref.files[0].path})"
            )
        entry = existing.domains.get(domain)
        crops = 1 if average_crops else ref.n_crops
        if entry is not None and entry.n_crops is not None and entry.n_crops != crops:
            raise CorpusError(
                f"{out}: domain {domain!r} holds videos with {entry.n_crops} crops, "
                f"the videos of {list_path} would have {crops}"
                + (" (try --average-crops)" if entry.n_crops == 1 else "")
            )


def _assign_gt(entries: Sequence[_Entry], gt_path: str) -> None:
    p = Path(gt_path)
    if not p.is_file():
        raise CorpusError(f"{p}: ground-truth file not found")
    try:
        gt = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CorpusError(f"{p}: not a readable numeric .npy array ({exc})") from exc
    if not isinstance(gt, np.ndarray) or gt.dtype.kind not in "fiub":
        raise CorpusError(f"{p}: expected a numeric 1-D .npy array")
    if gt.ndim != 1:
        raise CorpusError(f"{p}: ground truth has shape {gt.shape}, expected 1-D (frames,)")
    bad = ~((gt == 0) | (gt == 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise CorpusError(f"{p}: frame {i} has value {gt[i].item()!r}; ground truth must be 0 or 1")
    need = sum(FRAMES_PER_SNIPPET * e.n_snippets for e in entries)
    if len(gt) != need:
        raise CorpusError(
            f"{p}: ground truth has {len(gt)} frames, but the list's {len(entries)} videos need "
            f"{need} (= Σ {FRAMES_PER_SNIPPET}·T over {sum(e.n_snippets for e in entries)} snippets); "
            "is the list in the same order and complete?"
        )
    gt8 = gt.astype(np.uint8)
    off = 0
    for e in entries:
        n = FRAMES_PER_SNIPPET * e.n_snippets
        e.gt = gt8[off:off + n].copy()
        off += n


def _assign_labels(entries: Sequence[_Entry], *, fmt: str, has_gt: bool, labels: str | None,
                   abnormal_pattern: str | None, abnormal_first: int | None) -> None:
    sources = [n for n, v in (("--labels", labels), ("--abnormal-pattern", abnormal_pattern),
                              ("--abnormal-first", abnormal_first)) if v is not None]
    if fmt == "xd":
        if sources:
            raise CorpusError(f"--format xd takes labels from the file names; drop {', '.join(sources)}")
        return  # set by _xd_entries
    if has_gt:
        if abnormal_pattern is not None or abnormal_first is not None:
            raise CorpusError(
                "labels come from --gt; --abnormal-pattern/--abnormal-first cannot be combined with it "
                "(--labels may still add categories)"
            )
        for e in entries:
            assert e.gt is not None
            e.label = int(e.gt.any())
        if labels is not None:
            table = read_labels_csv(labels)
            for e in entries:
                if e.video_id in table:
                    lab, cats = table[e.video_id]
                    if lab != e.label:
                        raise CorpusError(
                            f"{labels}: video {e.video_id!r} has label {lab}, its ground truth says {e.label}"
                        )
                    e.categories = cats
        return
    if len(sources) != 1:
        raise CorpusError(
            "give exactly one label source (--labels CSV, --abnormal-pattern RE or --abnormal-first N)"
            + (f"; got {', '.join(sources)}" if sources else " or --gt")
        )
    if labels is not None:
        table = read_labels_csv(labels)
        missing = [e.video_id for e in entries if e.video_id not in table]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:_MAX_LISTED])
            more = f" (and {len(missing) - _MAX_LISTED} more)" if len(missing) > _MAX_LISTED else ""
            raise CorpusError(f"{labels}: no label for {len(missing)} video(s) of the list: {shown}{more}")
        for e in entries:
            e.label, e.categories = table[e.video_id][0], list(table[e.video_id][1])
    elif abnormal_pattern is not None:
        try:
            rx = re.compile(abnormal_pattern)
        except re.error as exc:
            raise CorpusError(f"--abnormal-pattern {abnormal_pattern!r}: invalid regex ({exc})") from exc
        for e in entries:
            e.label = int(rx.search(e.video_id) is not None)
    else:
        n = int(abnormal_first)  # type: ignore[arg-type]
        if n < 0 or n > len(entries):
            raise CorpusError(f"--abnormal-first {n}: the list has {len(entries)} videos")
        for i, e in enumerate(entries):
            e.label = int(i < n)


# --------------------------------------------------------------------------------------------------
# Pass 2: data


def _load_features(e: _Entry, list_path: str, average_crops: bool) -> np.ndarray:
    arrays = []
    for ln in e.files:
        where = f"{list_path}:{ln.lineno}: {ln.path}"
        try:
            a = np.load(ln.path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise CorpusError(f"{where}: cannot load ({exc})") from exc
        a = np.asarray(a, dtype=np.float32)
        bad = ~np.isfinite(a)
        if bad.any():
            n_nan = int(np.isnan(a).sum())
            n_inf = int(bad.sum()) - n_nan
            what = " and ".join(s for s in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} Inf" if n_inf else "") if s)
            raise CorpusError(f"{where}: video {e.video_id!r} has {what} feature values")
        arrays.append(a)
    if len(arrays) == 1:
        feats = arrays[0]
        if feats.ndim == 2:
            feats = feats[:, None, :]
    else:
        feats = np.stack(arrays, axis=1)
    expect = (e.n_snippets, e.n_crops, e.dim)
    if feats.shape != expect:  # the file changed between the passes
        raise CorpusError(f"{list_path}: video {e.video_id!r}: features now have shape {feats.shape}, "
                          f"pass 1 read {expect}")
    if average_crops and feats.shape[1] > 1:
        feats = feats.mean(axis=1, keepdims=True, dtype=np.float32)
    return np.ascontiguousarray(feats)


class _Progress:
    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.step = max(1, math.ceil(total / 10))

    def __call__(self, done: int) -> None:
        if self.enabled and (done % self.step == 0 or done == self.total):
            pct = 100 * done // max(1, self.total)
            print(f"import {self.label}: {done}/{self.total} videos ({pct}%)", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Entry point


def import_corpus(
    fmt: str,
    list_path: str | os.PathLike[str],
    out: str,
    *,
    domain: str,
    split: str,
    gt: str | os.PathLike[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
    abnormal_pattern: str | None = None,
    abnormal_first: int | None = None,
    roots: Sequence[Any] = (),
    average_crops: bool = False,
    backbone: str = "i3d",
    progress: bool = True,
    id_prefix: str = "",
    verify: bool = True,
    part_bytes: int = 128 << 20,
) -> Manifest:
    """Import the videos of ``list_path`` as ``domain``/``split`` into the corpus at ``out``.

    ``id_prefix`` is prepended to every video id of this import (``--id-prefix t_``: the test split's
    ``01.npy`` becomes ``t_01``), so splits whose files share names can live in one domain; labels CSVs are
    still keyed by the file stem. Returns the committed manifest. Raises :class:`CorpusError` (naming the
    file, line or video at fault) on any invalid input, in which case nothing is written.
    """
    _check_import_names(fmt, domain, split, id_prefix)
    list_s = str(list_path)
    entries = _read_entries(
        fmt, list_s, out, domain=domain, gt=str(gt) if gt is not None else None,
        labels=str(labels) if labels is not None else None, abnormal_pattern=abnormal_pattern,
        abnormal_first=abnormal_first, roots=roots, average_crops=average_crops, backbone=backbone,
        id_prefix=id_prefix,
    )
    # pass 2: data, through the transactional writer (it takes the corpus's write lock)
    writer = CorpusWriter(out, feature_dim=entries[0].dim, backbone=backbone, source_format=fmt, verify=verify,
                          part_bytes=part_bytes)
    try:
        _check_not_taken(entries, writer.existing_ids(domain), list_s, out, domain, split, id_prefix)
        _write_entries(writer, entries, list_s, domain, split, average_crops, progress)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


def _check_import_names(fmt: str, domain: str, split: str, id_prefix: str) -> None:
    if fmt not in FORMATS:
        raise CorpusError(f"unknown import format {fmt!r} (known: {', '.join(FORMATS)})")
    check_name("domain", domain)
    check_name("split", split)
    if id_prefix:
        check_name("--id-prefix", id_prefix)


def _read_entries(
    fmt: str, list_s: str, out: str, *, domain: str, gt: str | None, labels: str | None,
    abnormal_pattern: str | None, abnormal_first: int | None, roots: Sequence[Any], average_crops: bool,
    backbone: str, id_prefix: str,
) -> list[_Entry]:
    """Pass 1 of :func:`import_corpus`: headers and metadata only; every entry checked, labelled and
    given its stored (prefixed) video id."""
    lines = read_list(list_s, roots)
    _check_missing(lines, list_s)
    entries = _rtfm_entries(lines, list_s) if fmt == "rtfm" else _xd_entries(lines, list_s)
    existing = Corpus.open(out).manifest if Corpus.exists(out) else None
    _check_shapes(entries, list_s, existing, domain, average_crops, out)
    if gt is not None:
        _assign_gt(entries, gt)
    _assign_labels(entries, fmt=fmt, has_gt=gt is not None, labels=labels,
                   abnormal_pattern=abnormal_pattern, abnormal_first=abnormal_first)
    if existing is not None and existing.backbone not in ("unknown", backbone) and backbone != "unknown":
        raise CorpusError(f"{out}: corpus backbone is {existing.backbone!r}, these features are {backbone!r}")
    for e in entries:  # labels were looked up by file stem; the stored id carries the prefix
        e.video_id = id_prefix + e.video_id
        check_video_id(e.video_id, f"{list_s}:{e.files[0].lineno}")
    return entries


def _check_not_taken(entries: Sequence[_Entry], taken: set[str], list_s: str, out: str, domain: str, split: str,
                     id_prefix: str) -> None:
    dup = [e.video_id for e in entries if e.video_id in taken]
    if dup:
        shown = ", ".join(repr(d) for d in dup[:_MAX_LISTED])
        more = f" (and {len(dup) - _MAX_LISTED} more)" if len(dup) > _MAX_LISTED else ""
        hint = (f"; files of different splits with the same names need --id-prefix (e.g. --id-prefix {split[:2]}_)"
                if not id_prefix else f"; pick another --id-prefix than {id_prefix!r}")
        raise CorpusError(f"{list_s}: {len(dup)} video(s) already in domain {domain!r} of {out}: {shown}{more}{hint}")


def _write_entries(writer: CorpusWriter, entries: Sequence[_Entry], list_s: str, domain: str, split: str,
                   average_crops: bool, progress: bool) -> None:
    """Pass 2 of :func:`import_corpus`: load each video's features and add it to ``writer``."""
    tick = _Progress(len(entries), f"{domain}/{split}", progress)
    for i, e in enumerate(entries, start=1):
        feats = _load_features(e, list_s, average_crops)
        writer.add(Video(video_id=e.video_id, domain=domain, split=split, label=e.label,
                         features=feats, categories=list(e.categories), gt=e.gt))
        tick(i)


# --------------------------------------------------------------------------------------------------
# Side signals (per-snippet optical-flow magnitude and detector class scores, CLAV+CoMo §1.4)


def _load_side(path: Path, video_id: str, name: str, n_snippets: int) -> np.ndarray:
    if not path.is_file():
        raise CorpusError(f"{path}: not found (side signal {name!r} of video {video_id!r}; "
                          f"expected one <video_id>.npy per video)")
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CorpusError(f"{path}: cannot load ({exc})") from exc
    if name == "flow" and a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    try:
        return check_side(video_id, name, a, n_snippets)
    except CorpusError as exc:
        raise CorpusError(f"{path}: {exc}") from None


def add_side_signals(
    uri: str,
    domain: str,
    signals: dict[str, str | os.PathLike[str]],
    *,
    splits: Sequence[str] | None = None,
    progress: bool = True,
) -> Manifest:
    """Attach side signals to every video of ``domain``'s ``splits`` (default: all) of the corpus at ``uri``.

    ``signals`` maps a side-signal name (``flow``: (T,) per video, ``objects``: (T, W)) to a directory of
    ``<video_id>.npy`` files (loaded with ``allow_pickle=False``; T must equal the video's snippet count).
    Every file is loaded and validated before anything is written; the split's parts are then rewritten
    with the side columns and the manifest is committed atomically, after which the old parts are deleted.
    Signals a video already has and that are not named here are kept.
    """
    unknown = sorted(set(signals) - set(SIDE_SIGNALS))
    if unknown or not signals:
        raise CorpusError(f"side signals {unknown or '(none)'}: expected some of {', '.join(SIDE_SIGNALS)}")
    check_name("domain", domain)
    corpus = Corpus.open(uri)
    wanted = list(splits) if splits else corpus.splits(domain)
    for s in wanted:
        if s not in corpus.splits(domain):
            raise CorpusError(f"{uri}: domain {domain!r} has no split {s!r} (splits: {', '.join(corpus.splits(domain))})")
    # load and validate everything first: an error leaves the corpus untouched
    per_split: dict[str, list[Video]] = {}
    for s in wanted:
        videos = list(corpus.videos(domain, s))
        tick = _Progress(len(videos), f"side signals {domain}/{s}", progress)
        for i, v in enumerate(videos, start=1):
            for name, folder in signals.items():
                v.side[name] = _load_side(Path(folder) / f"{v.video_id}.npy", v.video_id, name, v.n_snippets)
            tick(i)
        per_split[s] = videos
    old_parts = set(corpus.part_paths(domain))
    m = corpus.manifest
    entry = m.domains[domain]
    writer = CorpusWriter(uri, feature_dim=m.feature_dim, backbone=m.backbone, frames_per_snippet=m.frames_per_snippet,
                          source_format=entry.source_format)
    try:
        if writer.manifest.domains.get(domain) != entry:  # read again under the write lock
            raise CorpusError(f"{uri}: domain {domain!r} was changed by another writer while its side signals "
                              f"were loaded; run add-side again")
        for s in wanted:
            writer.manifest.domains[domain].splits.pop(s)
        writer.existing_ids(domain).difference_update(v.video_id for vs in per_split.values() for v in vs)
        for videos in per_split.values():
            for v in videos:
                writer.add(v)
        manifest = writer.commit()
    except BaseException:
        writer.abort()
        raise
    kept = set(Corpus(uri, manifest).part_paths(domain))
    for path in sorted(old_parts - kept):
        corpus.fs.rm(path)
    return manifest
