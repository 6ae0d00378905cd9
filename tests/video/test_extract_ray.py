"""Feature extraction on Ray Data, end to end: synthetic videos with known abnormal intervals (encoded to
real containers) → jobs/extract.py's pipeline → a corpus whose snippet counts and frame gt are exact,
corrupt files reported by name (skipped, or failing the job with nothing committed), and a corpus that
trains MDVAD unchanged and learns the planted anomaly.

Setup: 32x32 videos at 25 fps, 48-80 frames (3-5 snippets), the anomaly is the large red cross of
``moving_shapes`` over a quarter to a half of each abnormal video; the backbone is a random-weight I3D
at width 1/8 (128-d) on the centre crop (the cross sits in the centre; corner crops would not see it).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
import torch

from omnivad import config
from omnivad.corpus.format import Corpus
from omnivad.engine.local import train_local
from omnivad.engine.spec import RunSpec
from omnivad.metrics import evaluate_domain
from omnivad.video.cli import add_extract_args, extract_main
from omnivad.video.extract import extract_corpus
from omnivad.video.io import VideoError, read_frames
from omnivad.video.synth import write_video_set

pytestmark = pytest.mark.ray
SEED = int(os.environ.get("OMNIVAD_TEST_SEED", "0"))  # video and training seeds offset (tests/margins.py)

VIDEO = ["video.random_weights=true", "video.width=0.125", "video.resize=32", "video.crop_size=28",
         "video.crops=center", "video.on_error=skip"]
MDVAD = ["model.method=mil", "loss.ac=false", "train.lr=1e-3", "data.batch_per_class=4"]
GARBAGE = b"\x00\x01 this is not a video " * 64


class World:
    """Train and test videos under one directory, one labels CSV with a ``split`` column: one extraction."""

    def __init__(self, root) -> None:
        self.root = root
        kw = dict(n_frames=(48, 80), size=(32, 32), kinds=("shape",))
        vids = root / "videos"
        self.truth = {"train": write_video_set(str(vids / "train"), 8, 8, seed=1 + 10 * SEED, prefix="tr_", **kw),
                      "test": write_video_set(str(vids / "test"), 4, 4, seed=2 + 10 * SEED, prefix="te_", **kw)}
        (vids / "train" / "tr_zz_corrupt.avi").write_bytes(GARBAGE)
        rows = [["video", "label", "category", "split"], ["tr_zz_corrupt.avi", "0", "normal", "train"]]
        for split in ("train", "test"):
            lines = (vids / split / "labels.csv").read_text().splitlines()[1:]
            rows += [line.split(",") + [split] for line in lines]
        (root / "labels.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
        (root / "annotations.txt").write_text("".join((vids / s / "annotations.txt").read_text() for s in ("train", "test")))
        self.cfg = config.load(overrides=VIDEO + MDVAD)
        self.corpus_uri = str(root / "corpus")
        self.report = extract_corpus(self.cfg, str(vids), self.corpus_uri, "syn", labels=str(root / "labels.csv"),
                                     annotations=str(root / "annotations.txt"), progress=False)
        self.corpus = Corpus.open(self.corpus_uri)


@pytest.fixture(scope="module")
def world(ray_local, tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("extract"))


def test_snippet_counts_and_frame_gt_are_exact(world: World):
    m = world.corpus.manifest
    assert m.feature_dim == 128 and m.backbone == "i3d-w0.125-random0-centercrop" and m.frames_per_snippet == 16
    videos = {v.video_id: v for split in ("train", "test") for v in world.corpus.videos("syn", split)}
    assert len(videos) == 24  # the corrupt one is not there, every good one is
    for split, truth in world.truth.items():
        for name, intervals in truth.items():
            v = videos[name.removesuffix(".mp4")]
            n = len(read_frames(str(world.root / "videos" / split / name)))
            gt = np.zeros(n, np.uint8)
            for s, e in intervals:
                gt[s:e] = 1
            assert v.split == split and v.label == int(bool(intervals))
            assert v.n_snippets == n // 16 and v.features.shape == (n // 16, 1, 128)
            assert v.gt is not None and np.array_equal(v.gt, gt), name
            assert v.category == ("shape" if intervals else "Normal")
            assert np.isfinite(v.features).all() and np.abs(v.features).mean() > 0.01
    rep = world.report
    assert (rep.domain, rep.split) == ("syn", "test,train")
    assert rep.snippets == sum(v.n_snippets for v in videos.values())


def test_corrupt_video_is_skipped_and_named_in_the_report(world: World):
    rep = world.report
    bad = str(world.root / "videos" / "train" / "tr_zz_corrupt.avi")
    assert [s["video"] for s in rep.skipped] == [bad] and rep.skipped[0]["error"].startswith(f"{bad}: ")
    saved = json.loads((world.root / "corpus" / "reports" / "extract-syn-test+train.json").read_text())
    assert saved["status"] == "ok" and saved["skipped"] == rep.skipped and len(saved["extracted"]) == 24


def test_on_error_fail_names_the_file_and_commits_nothing(world: World, tmp_path):
    vids = tmp_path / "vids"
    write_video_set(str(vids), 1, 1, n_frames=40, size=(32, 32))
    (vids / "broken.mp4").write_bytes(GARBAGE)
    p = argparse.ArgumentParser()
    add_extract_args(p)
    out = tmp_path / "corpus"
    args = p.parse_args(["--videos", str(vids), "--out", str(out), "--domain", "d", "--split", "test",
                         "--annotations", str(vids / "annotations.txt"), "--random-weights", "--quiet",
                         "--crops", "center", "--on-error", "fail",
                         *[a for o in VIDEO[1:4] for a in ("--set", o)]])
    with pytest.raises(VideoError, match=rf"{vids / 'broken.mp4'}: cannot open video .*on_error=fail"):
        extract_main(args)
    assert not Corpus.exists(str(out))
    saved = json.loads((out / "reports" / "extract-d-test.json").read_text())
    assert saved["status"] == "failed" and saved["error"].startswith(str(vids / "broken.mp4"))
    # a rerun into an existing corpus fails before decoding, naming the video already there
    with pytest.raises(VideoError, match="video id 'te_abnormal_004' is already in domain 'syn'"):
        extract_corpus(world.cfg, str(world.root / "videos" / "test"), world.corpus_uri, "syn", "test",
                       annotations=str(world.root / "annotations.txt"), progress=False)


@pytest.mark.learning
def test_extracted_corpus_trains_mdvad_and_learns_the_anomaly(world: World, claim):
    """MIL (MDVAD's single-head baseline) for 100 steps on the extracted corpus, through the platform's loop.
    Measured frame AUC over 3 video seeds x 2 training seeds x {100, 200} steps: 0.864-0.917."""
    ids = [r["video_id"] for r in world.corpus.index("syn", "train")]
    spec = RunSpec(name="video", corpus_uri=world.corpus_uri, train={"syn": ids}, head_domains=["syn"], steps=100, seed=SEED)
    method, model = train_local(world.cfg, spec)
    vids = list(world.corpus.videos("syn", "test"))
    scores = {v.video_id: method.score(model, torch.from_numpy(np.array(v.features.transpose(1, 0, 2))), "syn").numpy()
              for v in vids}
    auc = evaluate_domain([(v.video_id, v.gt, v.label) for v in vids], scores, "syn")["auc"]
    print(f"frame AUC on extracted features: {auc:.3f}")
    # OMNIVAD_TEST_SEED 0-4: 0.795-0.931 (mean 0.878 ± 0.053, tests/README.md); 0.75 sat within one std of the worst
    claim("frame AUC on extracted features", auc, ">", 0.7)
