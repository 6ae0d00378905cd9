"""Importers: RTFM and XD layouts into the omnivad corpus, their validation and atomicity."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from omnivad.corpus.format import Corpus
from omnivad.corpus.importers import import_corpus, read_labels_csv, read_list, xd_label_from_name
from omnivad.errors import CorpusError

REPO = Path(__file__).resolve().parents[2]
COMMUNITY = Path(os.environ.get("OMNIVAD_COMMUNITY_DATA", REPO / ".." / "shared" / "data" / "community"))

C = 8  # feature dim of the synthetic videos


# --------------------------------------------------------------------------------------------------
# helpers


def make_rtfm(root: Path, specs: list[tuple[str, int]], *, crops: int | None = 10, dim: int = C,
              seed: int = 0) -> tuple[Path, dict[str, np.ndarray]]:
    """One .npy per video (``(T, crops, C)``, or ``(T, C)`` when crops is None) and a list file."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    lines = []
    for name, t in specs:
        shape = (t, dim) if crops is None else (t, crops, dim)
        a = rng.standard_normal(shape).astype(np.float32)
        np.save(root / f"{name}.npy", a)
        arrays[name] = a
        lines.append(str(root / f"{name}.npy"))
    lst = root / "videos.list"
    lst.write_text("\n".join(lines[:1] + [""] + lines[1:]) + "\n\n")  # blank lines are ignored
    return lst, arrays


def make_gt(root: Path, specs: list[tuple[str, int]], abnormal: set[str]) -> tuple[Path, dict[str, np.ndarray]]:
    parts, out = [], {}
    for name, t in specs:
        g = np.zeros(16 * t, dtype=np.float32)
        if name in abnormal:
            g[5 : 5 + 8 * t] = 1
        parts.append(g)
        out[name] = g.astype(np.uint8)
    path = root / "gt.npy"
    np.save(path, np.concatenate(parts))
    return path, out


def make_xd(root: Path, videos: list[tuple[str, int]], *, crops: int = 5, dim: int = C,
            seed: int = 1) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    lines, arrays = [], {}
    for name, t in videos:
        stack = rng.standard_normal((t, crops, dim)).astype(np.float32)
        arrays[name] = stack
        for k in range(crops):
            np.save(root / "train" / f"{name}__{k}.npy", stack[:, k])
            lines.append(f"train/{name}__{k}.npy")  # relative to the list's directory
    lst = root / "xd.list"
    lst.write_text("\n".join(lines) + "\n")
    return lst, arrays


def by_id(uri: Path, domain: str | None = None, split: str | None = None):
    return {v.video_id: v for v in Corpus.open(str(uri)).videos(domain, split)}


def snapshot(uri: Path) -> tuple[bytes, list[str]]:
    files = sorted(str(p.relative_to(uri)) for p in uri.rglob("*"))
    return (uri / "manifest.json").read_bytes(), files


SPECS = [("vid_a", 5), ("vid_b", 3), ("Fight_c", 7), ("vid_d", 1)]


# --------------------------------------------------------------------------------------------------
# RTFM layout


def test_rtfm_test_split_roundtrip_with_gt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst, arrays = make_rtfm(tmp_path / "src", SPECS)
    gt, gts = make_gt(tmp_path / "src", SPECS, abnormal={"vid_b", "Fight_c"})
    out = tmp_path / "corpus"
    m = import_corpus("rtfm", lst, str(out), domain="ST", split="test", gt=gt)
    assert m.feature_dim == C and m.backbone == "i3d"
    st = m.domains["ST"].splits["test"]
    assert (st.videos, st.abnormal, st.normal, st.snippets) == (4, 2, 2, 16)
    assert m.domains["ST"].n_crops == 10 and m.domains["ST"].source_format == "rtfm"
    got = by_id(out)
    assert list(got) == [n for n, _ in SPECS]  # list order kept
    for name, a in arrays.items():
        v = got[name]
        assert v.features.dtype == np.float32 and v.features.shape == a.shape
        assert v.features.tobytes() == a.tobytes()  # bitwise
        np.testing.assert_array_equal(v.gt, gts[name])
        assert v.n_frames == 16 * a.shape[0]
        assert v.label == int(name in {"vid_b", "Fight_c"})
    assert "import ST/test: 4/4 videos (100%)" in capsys.readouterr().err


def test_rtfm_2d_features_become_one_crop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst, arrays = make_rtfm(tmp_path / "src", SPECS, crops=None)
    out = tmp_path / "c"
    m = import_corpus("rtfm", lst, str(out), domain="UB", split="train", abnormal_first=1, progress=False)
    assert m.domains["UB"].n_crops == 1
    got = by_id(out)
    for name, a in arrays.items():
        assert got[name].features.shape == (a.shape[0], 1, C)
        assert got[name].features[:, 0].tobytes() == a.tobytes()
        assert got[name].gt is None
    assert capsys.readouterr().err == ""


def test_rtfm_labels_csv_with_categories(tmp_path: Path) -> None:
    lst, _ = make_rtfm(tmp_path / "src", SPECS, crops=2)
    csv = tmp_path / "labels.csv"
    csv.write_text("video_id,label,category\nvid_a,0,Normal\nvid_b,1,Fighting|Riot\nFight_c,1,Fighting\n"
                   "vid_d.npy,0,\nnot_in_list,1,X\n")
    out = tmp_path / "c"
    m = import_corpus("rtfm", lst, str(out), domain="D", split="train", labels=csv, progress=False)
    got = by_id(out)
    assert {k: (v.label, v.categories) for k, v in got.items()} == {
        "vid_a": (0, []), "vid_b": (1, ["Fighting", "Riot"]), "Fight_c": (1, ["Fighting"]), "vid_d": (0, []),
    }
    assert got["vid_b"].category == "Fighting" and got["vid_a"].category == "Normal"
    assert m.domains["D"].categories == ["Fighting", "Riot"]


def test_labels_csv_without_header(tmp_path: Path) -> None:
    csv = tmp_path / "l.csv"
    csv.write_text("a,1\nb,0\n")
    assert read_labels_csv(csv) == {"a": (1, []), "b": (0, [])}
    csv.write_text("a,1\nb,yes\n")
    with pytest.raises(CorpusError, match=r"l\.csv:2.*'b'"):
        read_labels_csv(csv)


def test_rtfm_abnormal_pattern_and_first(tmp_path: Path) -> None:
    lst, _ = make_rtfm(tmp_path / "src", SPECS, crops=1)
    import_corpus("rtfm", lst, str(tmp_path / "p"), domain="D", split="train",
                  abnormal_pattern=r"^Fight|_b$", progress=False)
    assert {k: v.label for k, v in by_id(tmp_path / "p").items()} == {
        "vid_a": 0, "vid_b": 1, "Fight_c": 1, "vid_d": 0}
    import_corpus("rtfm", lst, str(tmp_path / "f"), domain="D", split="train", abnormal_first=2, progress=False)
    assert [v.label for v in by_id(tmp_path / "f").values()] == [1, 1, 0, 0]


def test_average_crops(tmp_path: Path) -> None:
    lst, arrays = make_rtfm(tmp_path / "src", SPECS)
    out = tmp_path / "c"
    m = import_corpus("rtfm", lst, str(out), domain="D", split="train", abnormal_first=0,
                      average_crops=True, progress=False)
    assert m.domains["D"].n_crops == 1
    for name, v in by_id(out).items():
        np.testing.assert_allclose(v.features[:, 0], arrays[name].mean(axis=1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "exactly one label source"),
        ({"abnormal_first": 1, "abnormal_pattern": "x"}, "exactly one label source.*--abnormal-pattern"),
        ({"abnormal_first": 9}, "--abnormal-first 9: the list has 4 videos"),
        ({"abnormal_pattern": "("}, "invalid regex"),
    ],
)
def test_label_source_errors(tmp_path: Path, kwargs: dict, match: str) -> None:
    lst, _ = make_rtfm(tmp_path / "src", SPECS, crops=1)
    with pytest.raises(CorpusError, match=match):
        import_corpus("rtfm", lst, str(tmp_path / "c"), domain="D", split="train", progress=False, **kwargs)
    assert not (tmp_path / "c").exists()


def test_gt_combined_with_label_sources(tmp_path: Path) -> None:
    lst, _ = make_rtfm(tmp_path / "src", SPECS, crops=1)
    gt, _ = make_gt(tmp_path / "src", SPECS, abnormal={"vid_b"})
    out = tmp_path / "c"
    with pytest.raises(CorpusError, match="labels come from --gt"):
        import_corpus("rtfm", lst, str(out), domain="D", split="test", gt=gt, abnormal_first=1, progress=False)
    csv = tmp_path / "l.csv"
    csv.write_text("vid_a,1,Riot\n")
    with pytest.raises(CorpusError, match=r"l\.csv: video 'vid_a' has label 1, its ground truth says 0"):
        import_corpus("rtfm", lst, str(out), domain="D", split="test", gt=gt, labels=csv, progress=False)
    csv.write_text("vid_b,1,Riot\n")  # with --gt the CSV only adds categories (and must agree)
    import_corpus("rtfm", lst, str(out), domain="D", split="test", gt=gt, labels=csv, progress=False)
    got = by_id(out)
    assert (got["vid_b"].label, got["vid_b"].categories) == (1, ["Riot"]) and got["vid_a"].categories == []


@pytest.mark.parametrize(
    "fmt, domain, match",
    [("i3d", "D", "unknown import format 'i3d'"), ("rtfm", "a/b", "domain 'a/b'"), ("rtfm", "", "domain ''")],
)
def test_bad_arguments(tmp_path: Path, fmt: str, domain: str, match: str) -> None:
    lst, _ = make_rtfm(tmp_path / "src", SPECS, crops=1)
    with pytest.raises(CorpusError, match=match):
        import_corpus(fmt, lst, str(tmp_path / "c"), domain=domain, split="train", abnormal_first=0,
                      progress=False)
    with pytest.raises(CorpusError, match=r"nope\.list: list file not found"):
        import_corpus("rtfm", tmp_path / "nope.list", str(tmp_path / "c"), domain="D", split="train",
                      abnormal_first=0, progress=False)
    assert not (tmp_path / "c").exists()


def test_progress_every_tenth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst, _ = make_rtfm(tmp_path / "src", [(f"v{i:02d}", 1) for i in range(25)], crops=1, dim=2)
    import_corpus("rtfm", lst, str(tmp_path / "c"), domain="D", split="train", abnormal_first=0)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "import D/train: 3/25 videos (12%)" and err[-1] == "import D/train: 25/25 videos (100%)"
    assert len(err) == 9


def test_gt_values_and_rank_checked(tmp_path: Path) -> None:
    lst, _ = make_rtfm(tmp_path / "src", [("v", 2)], crops=1)
    g = np.zeros(32)
    g[12] = 2
    np.save(tmp_path / "g.npy", g)
    with pytest.raises(CorpusError, match=r"g\.npy: frame 12 has value 2\.0; ground truth must be 0 or 1"):
        import_corpus("rtfm", lst, str(tmp_path / "c"), domain="D", split="test", gt=tmp_path / "g.npy")
    np.save(tmp_path / "g.npy", np.zeros((32, 1)))
    with pytest.raises(CorpusError, match=r"g\.npy: ground truth has shape \(32, 1\), expected 1-D"):
        import_corpus("rtfm", lst, str(tmp_path / "c"), domain="D", split="test", gt=tmp_path / "g.npy")
    assert not (tmp_path / "c").exists()


def test_labels_csv_missing_video(tmp_path: Path) -> None:
    lst, _ = make_rtfm(tmp_path / "src", SPECS, crops=1)
    csv = tmp_path / "labels.csv"
    csv.write_text("vid_a,0\nvid_b,1\n")
    with pytest.raises(CorpusError, match=r"labels\.csv: no label for 2 video\(s\).*'Fight_c'"):
        import_corpus("rtfm", lst, str(tmp_path / "c"), domain="D", split="train", labels=csv, progress=False)


def test_root_rewriting(tmp_path: Path) -> None:
    src = tmp_path / "real"
    _, arrays = make_rtfm(src, SPECS, crops=1)
    lst = tmp_path / "orig.list"
    lst.write_text("".join(f"/mnt/hdd/feats/{n}.npy\n" for n, _ in SPECS))
    with pytest.raises(CorpusError, match=r"4 of 4 files not found.*line 1: /mnt/hdd/feats/vid_a\.npy.*--root"):
        import_corpus("rtfm", lst, str(tmp_path / "c"), domain="D", split="train", abnormal_first=0,
                      progress=False)
    assert not (tmp_path / "c").exists()
    import_corpus("rtfm", lst, str(tmp_path / "c"), domain="D", split="train", abnormal_first=0,
                  roots=[("/nowhere/", "/x/"), ("/mnt/hdd/feats", str(src))], progress=False)
    assert set(by_id(tmp_path / "c")) == set(arrays)
    # "OLD=NEW" strings are accepted too; the first matching prefix wins
    lines = read_list(lst, [f"/mnt/hdd={tmp_path}/a", f"/mnt={tmp_path}/b"])
    assert lines[0].path == Path(f"{tmp_path}/a/feats/vid_a.npy") and lines[0].lineno == 1


def test_second_domain_and_split_added_to_existing_corpus(tmp_path: Path) -> None:
    out = tmp_path / "c"
    lst1, a1 = make_rtfm(tmp_path / "s1", SPECS, crops=2, seed=1)
    gt, _ = make_gt(tmp_path / "s1", SPECS, abnormal={"vid_a"})
    import_corpus("rtfm", lst1, str(out), domain="A", split="test", gt=gt, progress=False)
    lst2, a2 = make_rtfm(tmp_path / "s2", SPECS, crops=2, seed=2)  # same ids, other domain: fine
    import_corpus("rtfm", lst2, str(out), domain="B", split="train", abnormal_first=1, progress=False)
    lst3, a3 = make_rtfm(tmp_path / "s3", [("new_1", 4)], crops=2, seed=3)
    m = import_corpus("rtfm", lst3, str(out), domain="A", split="train", abnormal_first=0, progress=False)
    assert set(m.domains) == {"A", "B"} and set(m.domains["A"].splits) == {"test", "train"}
    assert by_id(out, "A", "test")["vid_a"].features.tobytes() == a1["vid_a"].tobytes()
    assert by_id(out, "B")["vid_a"].features.tobytes() == a2["vid_a"].tobytes()
    assert by_id(out, "A", "train")["new_1"].features.tobytes() == a3["new_1"].tobytes()


# --------------------------------------------------------------------------------------------------
# Rejected inputs: CorpusError naming the culprit, nothing written


def _corrupt(kind: str, src: Path, lst: Path) -> tuple[dict, str]:
    """Break the RTFM source at ``src`` in one way; return extra import kwargs and the expected message."""
    bad = src / "vid_b.npy"
    if kind == "missing":
        bad.unlink()
        return {}, r"1 of 4 files not found: line 3: .*vid_b\.npy"
    if kind == "rank":
        np.save(bad, np.zeros((3, 2, 2, C), np.float32))
        return {}, r"videos\.list:3: .*vid_b\.npy: features have shape \(3, 2, 2, 8\) \(rank 4\)"
    if kind == "rank1":
        np.save(bad, np.zeros(3, np.float32))
        return {}, r"vid_b\.npy: features have shape \(3,\) \(rank 1\)"
    if kind == "dim":
        np.save(bad, np.zeros((3, 10, C + 1), np.float32))
        return {}, r"vid_b\.npy: video 'vid_b' has feature dim 9, the first video .*vid_a\.npy\) has 8"
    if kind == "nan":
        a = np.load(bad)
        a[1, 2, 3] = np.nan
        np.save(bad, a)
        return {}, r"vid_b\.npy: video 'vid_b' has 1 NaN feature values"
    if kind == "inf":
        a = np.load(bad)
        a[0, 0, 0] = -np.inf
        a[2, 0, 0] = np.inf
        np.save(bad, a)
        return {}, r"vid_b\.npy: video 'vid_b' has 2 Inf feature values"
    if kind == "t0":
        np.save(bad, np.zeros((0, 10, C), np.float32))
        return {}, r"vid_b\.npy: video 'vid_b' has T = 0 snippets"
    if kind == "crops":
        np.save(bad, np.zeros((3, 5, C), np.float32))
        return {}, r"vid_b\.npy: video 'vid_b' has 5 crops, the first video .*vid_a\.npy\) has 10"
    if kind == "gt_length":
        gt = src / "gt.npy"
        np.save(gt, np.zeros(16 * 16 + 3, np.float32))
        return {"gt": gt}, r"gt\.npy: ground truth has 259 frames, but the list's 4 videos need 256"
    if kind == "dup":
        lst.write_text(lst.read_text() + f"{src}/other/vid_b.npy\n")
        (src / "other").mkdir()
        np.save(src / "other" / "vid_b.npy", np.zeros((2, 10, C), np.float32))
        return {}, r"videos\.list:7: duplicate video id 'vid_b' \(also on line 3\)"
    if kind == "pickle":
        np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return {}, r"videos\.list:3: .*vid_b\.npy: not a readable numeric \.npy array"
    raise AssertionError(kind)


BAD = ["missing", "rank", "rank1", "dim", "nan", "inf", "t0", "crops", "gt_length", "dup", "pickle"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_new_corpus_leaves_nothing(tmp_path: Path, kind: str) -> None:
    src = tmp_path / "src"
    lst, _ = make_rtfm(src, SPECS)
    kwargs, match = _corrupt(kind, src, lst)
    if "gt" not in kwargs:
        kwargs["abnormal_first"] = 1
    out = tmp_path / "corpus"
    with pytest.raises(CorpusError, match=match):
        import_corpus("rtfm", lst, str(out), domain="D", split="test", progress=False, **kwargs)
    assert not out.exists()


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_existing_corpus_unchanged(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "corpus"
    lst0, _ = make_rtfm(tmp_path / "first", [("old_1", 3), ("old_2", 2)], seed=9)
    import_corpus("rtfm", lst0, str(out), domain="D", split="train", abnormal_first=1, progress=False)
    before = snapshot(out)
    src = tmp_path / "src"
    lst, _ = make_rtfm(src, SPECS)
    kwargs, match = _corrupt(kind, src, lst)
    if "gt" not in kwargs:
        kwargs["abnormal_first"] = 1
    with pytest.raises(CorpusError, match=match):
        import_corpus("rtfm", lst, str(out), domain="D", split="test", progress=False, **kwargs)
    assert snapshot(out) == before


def test_nan_in_last_video_after_parts_were_flushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A late error aborts even after the writer flushed part files (tiny part size forces flushes)."""
    import omnivad.corpus.importers as imp

    out = tmp_path / "corpus"
    lst0, _ = make_rtfm(tmp_path / "first", [("old_1", 3)], seed=9)
    import_corpus("rtfm", lst0, str(out), domain="D", split="train", abnormal_first=1, progress=False)
    before = snapshot(out)
    src = tmp_path / "src"
    lst, _ = make_rtfm(src, SPECS)
    a = np.load(src / "vid_d.npy")
    a[0, 0, 0] = np.nan
    np.save(src / "vid_d.npy", a)
    real = imp.CorpusWriter
    monkeypatch.setattr(imp, "CorpusWriter", lambda *a, **k: real(*a, **{**k, "part_bytes": 1}))
    with pytest.raises(CorpusError, match=r"vid_d\.npy: video 'vid_d' has 1 NaN"):
        import_corpus("rtfm", lst, str(out), domain="E", split="train", abnormal_first=1, progress=False)
    assert snapshot(out) == before
    with pytest.raises(CorpusError, match="vid_d"):
        import_corpus("rtfm", lst, str(tmp_path / "new"), domain="E", split="train", abnormal_first=1,
                      progress=False)
    assert not (tmp_path / "new").exists()


def test_duplicate_id_already_in_corpus(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    lst, _ = make_rtfm(tmp_path / "src", SPECS, crops=1)
    import_corpus("rtfm", lst, str(out), domain="D", split="train", abnormal_first=1, progress=False)
    before = snapshot(out)
    lst2, _ = make_rtfm(tmp_path / "src2", [("fresh", 2), ("vid_b", 2)], crops=1)
    with pytest.raises(CorpusError, match=r"1 video\(s\) already in domain 'D' of .*: 'vid_b'"):
        import_corpus("rtfm", lst2, str(out), domain="D", split="test", abnormal_first=0, progress=False)
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "shape, match",
    [((3, 1, C + 2), r"corpus feature_dim is 8, the videos of .* have 10"),
     ((3, 4, C), r"domain 'D' holds videos with 1 crops, .* would have 4 \(try --average-crops\)")],
)
def test_mismatch_with_existing_corpus(tmp_path: Path, shape: tuple, match: str) -> None:
    out = tmp_path / "corpus"
    lst, _ = make_rtfm(tmp_path / "src", SPECS, crops=1)
    import_corpus("rtfm", lst, str(out), domain="D", split="train", abnormal_first=1, progress=False)
    before = snapshot(out)
    (tmp_path / "s2").mkdir()
    np.save(tmp_path / "s2" / "z.npy", np.ones(shape, np.float32))
    (tmp_path / "s2" / "z.list").write_text(str(tmp_path / "s2" / "z.npy"))
    with pytest.raises(CorpusError, match=match):
        import_corpus("rtfm", tmp_path / "s2" / "z.list", str(out), domain="D", split="test",
                      abnormal_first=0, progress=False)
    assert snapshot(out) == before


# --------------------------------------------------------------------------------------------------
# XD layout

XD_VIDEOS = [
    ("Bad.Boys.1995__#00-26-51_00-27-53_label_B2-0-0", 4),
    ("A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A", 6),
    ("Brave.Heart.1995__#01-01-01_01-02-00_label_G-B1-B6", 3),
]


def test_xd_label_from_name() -> None:
    assert xd_label_from_name("train/Foo__#1_label_A__3.npy") == (0, [])
    assert xd_label_from_name("Foo_label_B1-0-0") == (1, ["Fighting"])
    assert xd_label_from_name("Foo_label_G-B2-B6") == (1, ["Explosion", "Shooting", "Car accident"])
    assert xd_label_from_name("Foo_label_B4-B5-0__0") == (1, ["Riot", "Abuse"])
    with pytest.raises(CorpusError, match="unknown category code 'B3'"):
        xd_label_from_name("Foo_label_B3-0-0")
    with pytest.raises(CorpusError, match="'Foo_bar'.*label_"):
        xd_label_from_name("Foo_bar__0.npy")


def test_xd_train_import(tmp_path: Path) -> None:
    lst, arrays = make_xd(tmp_path / "xd", XD_VIDEOS)
    out = tmp_path / "c"
    m = import_corpus("xd", lst, str(out), domain="XD", split="train", progress=False)
    assert m.domains["XD"].n_crops == 5 and m.domains["XD"].source_format == "xd"
    got = by_id(out)
    assert list(got) == [n for n, _ in XD_VIDEOS]
    for name, a in arrays.items():
        assert got[name].features.tobytes() == a.tobytes()
    assert got[XD_VIDEOS[0][0]].categories == ["Shooting"] and got[XD_VIDEOS[0][0]].label == 1
    assert got[XD_VIDEOS[1][0]].label == 0 and got[XD_VIDEOS[1][0]].category == "Normal"
    assert got[XD_VIDEOS[2][0]].categories == ["Explosion", "Fighting", "Car accident"]
    assert m.domains["XD"].categories == ["Car accident", "Explosion", "Fighting", "Shooting"]


def test_xd_test_gt_and_shuffled_crop_lines(tmp_path: Path) -> None:
    lst, arrays = make_xd(tmp_path / "xd", XD_VIDEOS, crops=3)
    lines = lst.read_text().split()
    lst.write_text("\n".join(reversed(lines[:3])) + "\n\n" + "\n".join(lines[3:]))  # crop order within a video
    gt, gts = make_gt(tmp_path / "xd", XD_VIDEOS, abnormal={XD_VIDEOS[0][0], XD_VIDEOS[2][0]})
    out = tmp_path / "c"
    import_corpus("xd", lst, str(out), domain="XD", split="test", gt=gt, average_crops=True, progress=False)
    for name, v in by_id(out).items():
        np.testing.assert_array_equal(v.gt, gts[name])
        np.testing.assert_allclose(v.features[:, 0], arrays[name].mean(axis=1), rtol=1e-6, atol=1e-6)


def test_xd_errors(tmp_path: Path) -> None:
    lst, _ = make_xd(tmp_path / "xd", XD_VIDEOS)
    out = tmp_path / "c"
    with pytest.raises(CorpusError, match="--format xd takes labels from the file names"):
        import_corpus("xd", lst, str(out), domain="XD", split="train", abnormal_first=1, progress=False)
    name = XD_VIDEOS[1][0]
    np.save(tmp_path / "xd" / "train" / f"{name}__3.npy", np.zeros((7, C), np.float32))
    with pytest.raises(CorpusError, match=rf"video '{re.escape(name)}': crop files differ in shape: .*__0\.npy is "
                                          r"\(6, 8\), .*__3\.npy is \(7, 8\)"):
        import_corpus("xd", lst, str(out), domain="XD", split="train", progress=False)
    (tmp_path / "xd" / "train" / f"{name}__3.npy").unlink()
    lst.write_text("\n".join(line for line in lst.read_text().split("\n") if not line.endswith(f"{name}__3.npy")))
    with pytest.raises(CorpusError, match=rf"video '{re.escape(name)}' has crop files \[0, 1, 2, 4\]"):
        import_corpus("xd", lst, str(out), domain="XD", split="train", progress=False)
    assert not out.exists()


def test_xd_differing_crop_counts(tmp_path: Path) -> None:
    lst, _ = make_xd(tmp_path / "xd", XD_VIDEOS)
    name = XD_VIDEOS[2][0]
    lst.write_text("\n".join(line for line in lst.read_text().split("\n") if not line.endswith(f"{name}__4.npy")))
    with pytest.raises(CorpusError, match=rf"video '{re.escape(name)}' has 4 crops, the first video .* has 5"):
        import_corpus("xd", lst, str(tmp_path / "c"), domain="XD", split="train", progress=False)
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------------------------------
# Real community list / gt files (no features: synthetic arrays under the real names)

needs_community = pytest.mark.skipif(
    not COMMUNITY.is_dir(),
    reason=f"community annotation files not found at {COMMUNITY} (set OMNIVAD_COMMUNITY_DATA)",
)


@needs_community
def test_real_xd_lists_names_and_labels() -> None:
    for fname, n_videos, n_normal in (("XD_Train.list", 3954, 2049), ("XD_Test.list", 800, None)):
        lines = [ln.raw for ln in read_list(COMMUNITY / "xd-violence" / fname)]
        names: dict[str, int] = {}
        for raw in lines:
            stem = os.path.basename(raw)[: -len(".npy")]
            names.setdefault(stem.rsplit("__", 1)[0], 0)
            names[stem.rsplit("__", 1)[0]] += 1
        assert len(names) == n_videos and set(names.values()) == {5}
        labels = {n: xd_label_from_name(n) for n in names}
        normal = sum(1 for lab, _ in labels.values() if lab == 0)
        if n_normal is not None:
            assert normal == n_normal
        assert all(cats for lab, cats in labels.values() if lab == 1)
        assert {c for _, cats in labels.values() for c in cats} <= {
            "Fighting", "Shooting", "Riot", "Abuse", "Car accident", "Explosion"}


def _fake_from_real_list(real_list: Path, tmp: Path, lengths: list[int], dim: int = 4) -> list[str]:
    """Write tiny (T, 2, dim) arrays under the real list's file names; return the stems."""
    raw = [ln.raw for ln in read_list(real_list)]
    old_root = os.path.dirname(raw[0])
    assert all(os.path.dirname(r) == old_root for r in raw)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for r, t in zip(raw, lengths, strict=True):
        np.save(tmp / os.path.basename(r), rng.standard_normal((t, 2, dim)).astype(np.float32))
    return [os.path.basename(r)[:-4] for r in raw]


@needs_community
def test_real_shanghaitech_train_abnormal_first(tmp_path: Path) -> None:
    real = COMMUNITY / "shanghaitech" / "shanghai-i3d-train-10crop.list"
    n = len(read_list(real))
    assert n == 238
    stems = _fake_from_real_list(real, tmp_path / "feats", [2] * n)
    old = os.path.dirname(read_list(real)[0].raw)
    m = import_corpus("rtfm", real, str(tmp_path / "c"), domain="ST", split="train", abnormal_first=63,
                      roots=[(old, str(tmp_path / "feats"))], progress=False)
    st = m.domains["ST"].splits["train"]
    assert (st.videos, st.abnormal, st.normal) == (238, 63, 175)
    idx = Corpus.open(str(tmp_path / "c")).index("ST", "train")
    assert [r["video_id"] for r in idx] == stems
    assert [r["label"] for r in idx] == [1] * 63 + [0] * 175


@needs_community
def test_real_shanghaitech_test_with_real_gt(tmp_path: Path) -> None:
    sh = COMMUNITY / "shanghaitech"
    real, gt_path = sh / "shanghai-i3d-test-10crop.list", sh / "gt-sh.npy"
    lines = read_list(real)
    gt = np.load(gt_path, allow_pickle=False)
    assert len(lines) == 199 and len(gt) == 142912
    # The true T_i are unknown (not floor/ceil of frames/16 for every video): floor(frames/16), plus one
    # snippet for the first videos until Σ16·T_i matches the gt -- this aligns every real mask.
    frames = [np.load(sh / "test_frame_mask" / (os.path.basename(ln.raw)[:-4].removesuffix("_i3d") + ".npy"),
                      allow_pickle=False).size for ln in lines]
    lengths = [f // 16 for f in frames]
    extra = (len(gt) - 16 * sum(lengths)) // 16
    lengths = [t + (i < extra) for i, t in enumerate(lengths)]
    assert 16 * sum(lengths) == len(gt)
    _fake_from_real_list(real, tmp_path / "feats", lengths)
    old = os.path.dirname(lines[0].raw)
    out = tmp_path / "c"
    m = import_corpus("rtfm", real, str(out), domain="ST", split="test", gt=gt_path,
                      roots=[f"{old}={tmp_path / 'feats'}"], progress=False)
    st = m.domains["ST"].splits["test"]
    assert (st.videos, st.abnormal, st.normal, st.snippets) == (199, 44, 155, len(gt) // 16)
    got = list(Corpus.open(str(out)).videos("ST", "test"))
    np.testing.assert_array_equal(np.concatenate([v.gt for v in got]), gt.astype(np.uint8))
    # a list one video short no longer matches the real gt
    short = tmp_path / "short.list"
    short.write_text("\n".join(ln.raw for ln in lines[:-1]))
    with pytest.raises(CorpusError, match=r"gt-sh\.npy: ground truth has 142912 frames, but the list's 198 videos"):
        import_corpus("rtfm", short, str(tmp_path / "c2"), domain="ST", split="test", gt=gt_path,
                      roots=[(old, str(tmp_path / "feats"))], progress=False)

