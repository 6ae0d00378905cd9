"""Issue 14: durable corpora and safe defaults. One test (or a few) per row of the issue's table; each checks the
error message (it names the culprit) and the file system (nothing outside, nothing partial, nothing of the
user's removed). No Ray: the rows about Ray's network defaults are in tests/cluster/test_loopback.py."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from omnivad import config, storage
from omnivad.cli import main
from omnivad.corpus import lock as corpus_lock
from omnivad.corpus.format import MANIFEST, Corpus
from omnivad.corpus.importers import add_side_signals, import_corpus
from omnivad.errors import ConfigError, CorpusError

REPO = Path(__file__).resolve().parents[2]
C = 8


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO / "platform") + os.pathsep + e.get("PYTHONPATH", "")
    return e


def make_list(root: Path, names: list[str], *, t: int = 4, crops: int = 2, dim: int = C, seed: int = 0,
              nan_last: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, name in enumerate(names):
        a = rng.standard_normal((t, crops, dim)).astype(np.float32)
        if nan_last and i == len(names) - 1:
            a[0, 0, 0] = np.nan
        np.save(root / f"{name}.npy", a)
        lines.append(str(root / f"{name}.npy"))
    lst = root / "videos.list"
    lst.write_text("\n".join(lines) + "\n")
    return lst


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and directory (None) under ``root``."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = Path(p).read_bytes()
    return out


def small_corpus(tmp_path: Path, domain: str = "cam", split: str = "train", n: int = 4) -> Path:
    out = tmp_path / "corpus"
    lst = make_list(tmp_path / f"src-{domain}-{split}", [f"v{i}" for i in range(n)])
    import_corpus("rtfm", lst, str(out), domain=domain, split=split, abnormal_first=n // 2, progress=False)
    return out


def corpus_with_scores(root: Path, prefix: str = "") -> tuple[Path, Path]:
    """A test split with frame-level gt (odd videos abnormal in their second half) and perfect score files."""
    out = root / "corpus"
    lst = make_list(root / "test-src", ["01", "02", "03", "04"], seed=2)
    gt = np.concatenate([np.r_[np.zeros(32), np.ones(32)] if i % 2 else np.zeros(64) for i in range(4)])
    np.save(root / "gt.npy", gt.astype(np.uint8))
    import_corpus("rtfm", lst, str(out), domain="avenue", split="test", gt=root / "gt.npy", progress=False,
                  id_prefix=prefix)
    scores = root / "scores"
    scores.mkdir()
    for v in Corpus.open(str(out)).videos("avenue", "test"):
        assert v.gt is not None
        np.save(scores / f"{v.video_id}.npy", v.gt.reshape(-1, 16).max(1).astype(np.float32))
    return out, scores


# --------------------------------------------------------------------------------------------------
# Row 1: path traversal through extract's --domain and a labels CSV's domain column; the one name rule


def test_row1_extract_labels_csv_domain_cannot_leave_the_corpus(tmp_path: Path) -> None:
    from omnivad.video.extract import extract_corpus

    videos = tmp_path / "in"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"not decoded: the plan fails first")
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,split,domain\na.mp4,0,test,../../../../escaped\n")
    out = tmp_path / "deep" / "er" / "corpus"
    before = tree(tmp_path)
    cfg = config.load(None, ["video.random_weights=true"])
    with pytest.raises(CorpusError, match=r"domain '\.\./\.\./\.\./\.\./escaped'.*letters, digits") as exc:
        extract_corpus(cfg, str(videos), str(out), None, None, labels=str(labels), progress=False)
    assert str(videos / "a.mp4") in str(exc.value)
    assert tree(tmp_path) == before  # no part, no report, no directory anywhere (not even --out)


def test_row1_extract_job_domain_flag_is_one_line_error(tmp_path: Path) -> None:
    videos = tmp_path / "in"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"x")
    out = tmp_path / "corpus"
    before = tree(tmp_path)
    r = subprocess.run([sys.executable, str(REPO / "jobs" / "extract.py"), "--videos", str(videos), "--out", str(out),
                        "--domain", "../escaped", "--split", "test", "--random-weights", "--quiet"],
                       capture_output=True, text=True, env=env(), timeout=300)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        "extract: error: --domain '../escaped': use letters, digits, '_', '-' or '.' only (not only dots), "
        "at most 128 characters"]
    assert tree(tmp_path) == before


@pytest.mark.parametrize("domain", ["..", "../x", "a/b", "", "sp ace", "x" * 129])
def test_row1_every_writer_uses_the_name_rule(tmp_path: Path, domain: str) -> None:
    from omnivad.corpus.format import CorpusWriter, Video
    from omnivad.corpus.poses import import_poses

    lst = make_list(tmp_path / "src", ["v0"])
    out = tmp_path / "corpus"
    with pytest.raises(CorpusError, match="domain"):
        import_corpus("rtfm", lst, str(out), domain=domain, split="train", abnormal_first=0, progress=False)
    assert not out.exists()
    with pytest.raises(CorpusError, match=r"domain .*letters, digits"):
        with CorpusWriter(str(out), feature_dim=C) as w:
            w.add(Video("v0", domain, "train", 0, np.zeros((2, 1, C), np.float32)))
    assert not out.exists()  # the writer's lock directory is rolled back too
    corpus = small_corpus(tmp_path)
    before = tree(tmp_path)
    with pytest.raises(CorpusError, match="domain"):
        import_poses(str(corpus), domain, "train", {})
    with pytest.raises(CorpusError, match="domain"):
        add_side_signals(str(corpus), domain, {"flow": str(tmp_path)}, progress=False)
    assert tree(tmp_path) == before


def test_row1_video_ids_with_separators_are_refused_but_real_names_pass(tmp_path: Path) -> None:
    from omnivad.corpus.format import CorpusWriter, Video

    out = tmp_path / "corpus"
    with pytest.raises(CorpusError, match=r"video id '\.\./x'"):
        with CorpusWriter(str(out), feature_dim=C) as w:
            w.add(Video("../x", "d", "train", 0, np.zeros((2, 1, C), np.float32)))
    assert not out.exists()
    odd = "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6 (1)"  # XD-style, with a space and parentheses
    with CorpusWriter(str(out), feature_dim=C) as w:
        w.add(Video(odd, "d", "train", 0, np.zeros((2, 1, C), np.float32)))
    assert [v.video_id for v in Corpus.open(str(out)).videos()] == [odd]


# --------------------------------------------------------------------------------------------------
# Row 2: one writer at a time


def test_row2_two_parallel_imports_both_land_or_fail_loudly(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    procs = []
    for d in ("alpha", "beta"):
        lst = make_list(tmp_path / d, [f"{d}{i}" for i in range(40)], t=16, crops=2, dim=64, seed=len(d))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "omnivad", "corpus", "import", "--format", "rtfm", "--list", str(lst),
             "--abnormal-first", "20", "--domain", d, "--split", "train", "--out", str(out), "--part-mb", "0.05"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()))
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    manifest = Corpus.open(str(out)).manifest
    for (rc, stdout, stderr), d in zip(results, ("alpha", "beta")):
        if rc == 0:
            assert f"imported {d}/train: 40 videos" in stdout
            assert manifest.domains[d].splits["train"].videos == 40  # never a silent loss
        else:
            assert "another writer holds the corpus" in stderr and "pid" in stderr, stderr
            assert d not in manifest.domains
    assert any(rc == 0 for rc, _, _ in results)
    listed = {p["path"] for p in Corpus.open(str(out)).parts()}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*.parquet")}
    assert on_disk == listed  # no orphaned part
    assert not (out / corpus_lock.LOCK_FILE).exists()
    assert Corpus.open(str(out)).verify_parts() == len(listed)


def test_row2_a_held_lock_fails_naming_the_holder_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    corpus = small_corpus(tmp_path)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {"host": __import__("socket").gethostname(), "pid": alive.pid, "command": "omnivad corpus import X",
                  "since": time.time()}
        (corpus / corpus_lock.LOCK_FILE).write_text(json.dumps(holder))
        before = tree(corpus)
        monkeypatch.setenv(corpus_lock.TIMEOUT_ENV, "0.5")
        lst = make_list(tmp_path / "more", ["w0", "w1"])
        t0 = time.monotonic()
        with pytest.raises(CorpusError, match=rf"another writer holds the corpus \(pid {alive.pid} on .*omnivad "
                                              rf"corpus import X.*waited 0.5s"):
            import_corpus("rtfm", lst, str(corpus), domain="other", split="train", abnormal_first=1, progress=False)
        assert time.monotonic() - t0 >= 0.5
        assert tree(corpus) == before  # the other writer's lock is kept, nothing added
    finally:
        alive.kill()
        alive.wait()


def test_row2_a_stale_lock_is_broken_with_a_warning(tmp_path: Path, capsys) -> None:
    corpus = small_corpus(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (corpus / corpus_lock.LOCK_FILE).write_text(json.dumps(
        {"host": __import__("socket").gethostname(), "pid": dead.pid, "command": "killed", "since": time.time()}))
    lst = make_list(tmp_path / "more", ["w0", "w1"])
    import_corpus("rtfm", lst, str(corpus), domain="other", split="train", abnormal_first=1, progress=False)
    err = capsys.readouterr().err
    assert f"breaking the stale write lock of pid {dead.pid}" in err and str(corpus) in err
    assert set(Corpus.open(str(corpus)).domains) == {"cam", "other"}
    assert not (corpus / corpus_lock.LOCK_FILE).exists()


# --------------------------------------------------------------------------------------------------
# Row 3: parts are verified


def _flip(path: Path, offset: int = 200, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, min(offset + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_row3_a_corrupt_part_is_an_error_naming_part_and_corpus(tmp_path: Path, capsys) -> None:
    corpus = small_corpus(tmp_path)
    rel = Corpus.open(str(corpus)).parts()[0]["path"]
    _flip(corpus / rel)
    for read in (lambda c: list(c.videos()), lambda c: c.index(), lambda c: c.table("cam", "train")):
        with pytest.raises(CorpusError, match=rf"{corpus}: part {rel} is corrupt: sha256 .*corpus.verify=false"):
            read(Corpus.open(str(corpus)))
    assert main(["corpus", "verify", str(corpus)]) == 1
    err = capsys.readouterr().err
    assert f"part {rel} is corrupt" in err and "1 of 1 part(s) failed verification" in err
    assert main(["benchmark", "build", "--corpus", str(corpus), "--out", str(tmp_path / "b.json")]) == 1
    assert f"part {rel} is corrupt" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_row3_verify_false_opts_out_and_verify_passes_a_good_corpus(tmp_path: Path, capsys) -> None:
    corpus = small_corpus(tmp_path)
    assert main(["corpus", "verify", str(corpus)]) == 0
    assert f"{corpus}: 1 part(s) verified" in capsys.readouterr().out
    good = [v.features.copy() for v in Corpus.open(str(corpus)).videos()]
    m = json.loads((corpus / MANIFEST).read_text())
    m["domains"]["cam"]["splits"]["train"]["parts"][0]["sha256"] = "0" * 64  # the record no longer matches
    (corpus / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(CorpusError, match="is corrupt"):
        Corpus.open(str(corpus)).index()
    cfg = config.load(None, [f"corpus.uri={corpus}", "corpus.verify=false"])
    got = [v.features for v in Corpus.open(cfg.corpus.uri, verify=cfg.corpus.verify).videos()]
    assert len(got) == len(good) and all(np.array_equal(x, y) for x, y in zip(got, good))


# --------------------------------------------------------------------------------------------------
# Row 4: a failed import removes only what it created


def test_row4_failed_import_keeps_the_users_directories(tmp_path: Path) -> None:
    d = tmp_path / "D"
    (d / "keep").mkdir(parents=True)
    (d / "also" / "empty").mkdir(parents=True)
    lst = make_list(tmp_path / "src", [f"v{i}" for i in range(6)], nan_last=True)
    with pytest.raises(CorpusError, match=r"video 'v5' has 1 NaN feature values"):
        import_corpus("rtfm", lst, str(d), domain="cam", split="train", abnormal_first=3, progress=False,
                      part_bytes=1)  # a part per video: five parts are written before the NaN
    assert tree(d) == {"keep": None, "also": None, os.path.join("also", "empty"): None}


def test_row4_failed_import_into_new_dir_removes_it_and_a_busy_dir_does_not_hide_the_error(
        tmp_path: Path, monkeypatch) -> None:
    lst = make_list(tmp_path / "src", ["v0", "v1", "v2"], nan_last=True)
    new = tmp_path / "a" / "b" / "new"
    with pytest.raises(CorpusError, match="NaN"):
        import_corpus("rtfm", lst, str(new), domain="cam", split="train", abnormal_first=1, progress=False, part_bytes=1)
    assert not (tmp_path / "a").exists()  # every directory it made, and only those

    mount = tmp_path / "mnt"
    mount.mkdir()
    real_rmdir = os.rmdir

    def busy(path, *a, **k):
        if os.path.abspath(path) == str(mount):
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        return real_rmdir(path, *a, **k)

    monkeypatch.setattr(os, "rmdir", busy)
    with pytest.raises(CorpusError, match="NaN"):  # the real error, not EBUSY
        import_corpus("rtfm", lst, str(mount), domain="cam", split="train", abnormal_first=1, progress=False,
                      part_bytes=1)
    assert tree(mount) == {}


# --------------------------------------------------------------------------------------------------
# Row 5: temp files of atomic writes never stay behind


def test_row5_disk_full_during_import_leaves_the_corpus_unchanged(tmp_path: Path, monkeypatch) -> None:
    corpus = small_corpus(tmp_path)
    before = tree(corpus)
    calls = []

    def enospc(tmp: str, fh) -> None:
        calls.append(tmp)
        if len(calls) == 2:  # the second part of this import
            raise OSError(errno.ENOSPC, "No space left on device", tmp)

    monkeypatch.setattr(storage, "write_fault_hook", enospc)
    lst = make_list(tmp_path / "more", ["w0", "w1", "w2"])
    with pytest.raises(Exception) as exc:
        import_corpus("rtfm", lst, str(corpus), domain="other", split="train", abnormal_first=1, progress=False,
                      part_bytes=1)
    assert "No space left on device" in str(exc.value) and "part-" in str(exc.value)
    assert tree(corpus) == before  # no .tmp, no part, same manifest


def test_row5_manifest_write_failure_and_evaluate_out_dir(tmp_path: Path, monkeypatch, capsys) -> None:
    corpus = small_corpus(tmp_path)
    before = tree(corpus)

    def enospc_on_manifest(tmp: str, fh) -> None:
        if os.path.basename(tmp).startswith("." + MANIFEST):
            raise OSError(errno.ENOSPC, "No space left on device", tmp)

    monkeypatch.setattr(storage, "write_fault_hook", enospc_on_manifest)
    lst = make_list(tmp_path / "more", ["w0"])
    with pytest.raises(Exception, match=rf"cannot write {corpus}/manifest.json: .*No space left"):
        import_corpus("rtfm", lst, str(corpus), domain="other", split="train", abnormal_first=1, progress=False)
    assert tree(corpus) == before
    monkeypatch.setattr(storage, "write_fault_hook", None)

    test, scores = corpus_with_scores(tmp_path / "t")
    outdir = tmp_path / "existing-dir"
    outdir.mkdir()
    rc = main(["evaluate", "--corpus", str(test), "--scores", str(scores), "--out", str(outdir)])
    err = capsys.readouterr().err
    assert rc == 1 and f"cannot write {outdir}: " in err and "Is a directory" in err, err
    assert list(outdir.iterdir()) == []  # no .existing-dir.<uuid>.tmp left in its parent either
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# --------------------------------------------------------------------------------------------------
# Row 6: no silent synthetic data


def test_row6_a_mistyped_corpus_is_an_error_before_ray(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rc = main(["run", "--corpus", "./typo-corpus", "--protocol", "E1", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip().splitlines() == [
        "omnivad: error: corpus.uri: no corpus at ./typo-corpus (no manifest.json); check the path, import a corpus "
        "there (omnivad corpus import) or make one (omnivad corpus synth)"]
    assert list(tmp_path.iterdir()) == []  # no synthetic corpus, no runs directory
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()


def test_row6_demo_corpus_only_at_its_default_location(tmp_path: Path) -> None:
    from omnivad.protocols.runner import ensure_corpus, is_demo_uri

    cfg = config.load(None, [f"corpus.uri={tmp_path / 'x'}", "corpus.synth_if_missing=true"])
    with pytest.raises(CorpusError, match=rf"no corpus at {tmp_path / 'x'}"):
        ensure_corpus(cfg)
    assert not (tmp_path / "x").exists()
    assert is_demo_uri(config.Config().corpus.uri)
    off = config.load(None, ["corpus.synth_if_missing=false"])
    if not Corpus.exists(off.corpus.uri):
        with pytest.raises(CorpusError, match="synth_if_missing=false"):
            ensure_corpus(off)


# --------------------------------------------------------------------------------------------------
# Row 7: manifest paths confined to the corpus


@pytest.mark.parametrize("bad", ["../other/videos/domain=cam/split=train/part-0123456789abcdef.parquet",
                                 "/etc/passwd", "videos/domain=../split=train/part-00.parquet",
                                 "videos/domain=cam/split=train/../../../other/part-00.parquet"])
def test_row7_crafted_manifest_paths_are_refused_for_reads_and_deletes(tmp_path: Path, bad: str, capsys) -> None:
    victim = small_corpus(tmp_path / "victim")
    corpus = small_corpus(tmp_path / "mine")
    m = json.loads((corpus / MANIFEST).read_text())
    m["domains"]["cam"]["splits"]["train"]["parts"][0]["path"] = bad
    (corpus / MANIFEST).write_text(json.dumps(m))
    before = tree(tmp_path)
    with pytest.raises(CorpusError, match=r"domains\.cam\.splits\.train\.parts.*is not inside the corpus"):
        Corpus.open(str(corpus))
    flow = tmp_path / "flow"
    assert main(["corpus", "add-side", "--corpus", str(corpus), "--domain", "cam", "--flow", str(flow)]) == 1
    assert main(["evaluate", "--corpus", str(corpus), "--scores", str(flow)]) == 1
    assert capsys.readouterr().err.count("is not inside the corpus") == 2
    assert tree(tmp_path) == before  # the victim's part is still there
    assert Corpus.open(str(victim)).verify_parts() == 1


# --------------------------------------------------------------------------------------------------
# Row 8: SIGTERM / SIGINT during an import roll back with a one-line message


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_row8_signal_during_import_rolls_back(tmp_path: Path, sig: signal.Signals) -> None:
    lst = make_list(tmp_path / "src", [f"v{i:03d}" for i in range(400)], t=8, crops=2, dim=32)
    out = tmp_path / "new" / "corpus"
    p = subprocess.Popen([sys.executable, "-m", "omnivad", "corpus", "import", "--format", "rtfm", "--list", str(lst),
                          "--abnormal-first", "10", "--domain", "cam", "--split", "train", "--out", str(out),
                          "--part-mb", "0.02"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    assert p.stderr is not None
    seen = []
    for line in p.stderr:  # progress lines: kill once parts have been written
        seen.append(line)
        if "(30%)" in line:
            break
    assert any(out.rglob("part-*.parquet")), seen
    p.send_signal(sig)
    rest = p.stderr.read()
    rc = p.wait(timeout=60)
    assert rc == 128 + int(sig)
    lines = [ln for ln in rest.strip().splitlines() if not ln.startswith("import cam/train:")]
    assert lines == [f"omnivad: interrupted ({sig.name}); the write in progress was rolled back"], rest
    assert "Traceback" not in rest
    assert not (tmp_path / "new").exists()  # no part, no manifest, no lock, no directory


# --------------------------------------------------------------------------------------------------
# Row 10: input validation before work starts


def test_row10_config_errors_name_the_file_or_field(tmp_path: Path, capsys) -> None:
    d = tmp_path / "cfgdir"
    d.mkdir()
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("train:\n  lr: 1e-3 # caf\xe9\n".encode("latin-1"))
    cases = [(["--config", str(d)], f"config file {d}: is a directory"),
             (["--config", str(bad)], f"config file {bad}: not UTF-8 text"),
             (["--set", "train.lr=.inf"], "train.lr: Input should be a finite number (got inf)"),
             (["--set", "loss.tau=nan"], "loss.tau: Input should be a finite number"),
             (["--method", "nope"], "model.method: unknown method 'nope' (known: "),
             (["--set", "model.trunk=nope"], "model.trunk: unknown trunk 'nope'")]
    for extra, msg in cases:
        rc = main(["run", "--protocol", "E1", "--corpus", str(tmp_path / "none"), *extra])
        err = capsys.readouterr().err
        assert rc == 1 and msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (extra, err)
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()
    with pytest.raises(ConfigError, match="video.backbone: unknown backbone 'c3d'"):
        config.load(None, ["video.backbone=c3d"])


# --------------------------------------------------------------------------------------------------
# Row 11: same-stem train and test splits


def test_row11_same_stems_import_with_id_prefix_and_evaluate(tmp_path: Path, capsys) -> None:
    out = tmp_path / "corpus"
    names = ["01", "02", "03", "04"]
    train = make_list(tmp_path / "training_videos", names, seed=1)
    test = make_list(tmp_path / "testing_videos", names, seed=2)
    gt = np.concatenate([np.r_[np.zeros(32), np.ones(32)] if i % 2 else np.zeros(64) for i in range(4)]).astype(np.uint8)
    np.save(tmp_path / "gt.npy", gt)
    base = ["corpus", "import", "--format", "rtfm", "--domain", "avenue", "--out", str(out), "--quiet"]
    assert main([*base, "--list", str(train), "--split", "train", "--abnormal-first", "2"]) == 0
    before = tree(out)
    assert main([*base, "--list", str(test), "--split", "test", "--gt", str(tmp_path / "gt.npy")]) == 1
    err = capsys.readouterr().err
    assert "4 video(s) already in domain 'avenue'" in err and "--id-prefix" in err
    assert tree(out) == before
    assert main([*base, "--list", str(test), "--split", "test", "--gt", str(tmp_path / "gt.npy"),
                 "--id-prefix", "t_"]) == 0
    corpus = Corpus.open(str(out))
    assert sorted(r["video_id"] for r in corpus.index("avenue", "test")) == ["t_01", "t_02", "t_03", "t_04"]
    assert sorted(r["video_id"] for r in corpus.index("avenue", "train")) == names
    scores = tmp_path / "scores"
    scores.mkdir()
    for v in corpus.videos("avenue", "test"):
        assert v.gt is not None
        np.save(scores / f"{v.video_id}.npy", v.gt.reshape(-1, 16).max(1).astype(np.float32))
    assert main(["evaluate", "--corpus", str(out), "--scores", str(scores), "--out", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["per_domain"]["avenue"]["auc"] == pytest.approx(1.0)
