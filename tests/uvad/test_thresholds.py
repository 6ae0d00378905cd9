"""Pseudo-labels, thresholds, stopping rule, bags, the weighted loss and the object ↔ snippet alignment,
against hand computations."""

from __future__ import annotations

import numpy as np
import torch

from omnivad.config import UVADConfig
from omnivad.uvad import thresholds as th
from omnivad.uvad.data import SnippetSet, pose_objects
from omnivad.uvad.occ import weighted_occ_loss
from omnivad.uvad.ws import make_bags


def test_initial_threshold_and_top_set():
    assert th.initial_threshold(0.15, 100) == 15
    assert th.initial_threshold(0.15, 101) == 16  # ⌈15.15⌉
    s = np.array([0.1, 0.9, 0.5, 0.8, 0.2])
    assert th.top_set(s, 0.4).tolist() == [1, 3]  # ⌈2.0⌉ = 2 highest


def test_hard_labels_module1_overlap_is_normal_and_later_top_t():
    s = np.arange(10, dtype=float)  # rank 1 = index 9
    # Q = 0.25: ⌈2.5⌉ = 3 abnormal (9, 8, 7), ⌈7.5⌉ = 8 normal (0..7): 7 is in both → normal
    assert th.hard_labels(s, 3, q=0.25).tolist() == [0] * 8 + [1, 1]
    assert th.hard_labels(s, 4).tolist() == [0] * 6 + [1] * 4


def test_cleanup_removes_isolated_flips():
    labels = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1], dtype=np.int8)
    scores = np.arange(13, dtype=float)
    lab, sc = th.cleanup(labels, scores)
    # i=3: neighbours 0,0 agree and differ → 0, score (2+4)/2; i=9: neighbours 1,1 → 1, score (8+10)/2
    assert lab.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert sc[3] == 3.0 and sc[9] == 9.0
    # i=6 (first 1 of a run): rule 2 looks at {4, 5, 7}; 7 is also 1, so it stays
    assert sc[6] == 6.0


def test_stopping_rule_code_and_paper_references():
    # sizes = |I_1|, |I_2|, ... = T_2, T_3, ...; code: reference T_2 - T_3 = 100, stop when a drop <= 10
    assert th.should_stop([500, 400], 600, 0.1)[0] is False  # before module 3: never
    assert th.should_stop([500, 400, 350], 600, 0.1) == (False, 50, 100)
    assert th.should_stop([500, 400, 350, 341], 600, 0.1) == (True, 9, 100)
    # paper: reference T_1 - T_2 = 100, testable after module 2
    assert th.should_stop([500, 495], 600, 0.1, "first") == (True, 5, 100)


def test_anchored_bags_cover_the_pool_once_with_top_anchors():
    rng = np.random.default_rng(0)
    pool = np.arange(100, 132)  # 32 snippets → 2 bags of 16
    scores = np.arange(32, dtype=float)  # pool[31] scores highest
    bags = make_bags(pool, scores, 16, rng)
    assert bags.shape == (2, 16)
    assert sorted(bags.ravel().tolist()) == pool.tolist()
    # descending order: top 3B = 6 snippets 131..126; bag b gets ranks b, b+2, b+4
    assert bags[0, :3].tolist() == [131, 129, 127] and bags[1, :3].tolist() == [130, 128, 126]
    padded = make_bags(np.arange(20), np.arange(20.0), 16, rng)  # 20 → padded to 32 by repeating the top
    assert padded.shape == (2, 16) and set(padded.ravel()) == set(range(20))


def test_weighted_occ_loss_matches_hand_value_and_drops_zero_entries():
    loss = torch.tensor([1.0, 2.0, 3.0, 4.0])
    w = torch.tensor([0.0, 0.5, 1.0, 0.75])
    # (1-w)·loss = 1, 1, 0, 1 → the zero entry is dropped: mean 1.0; plain mean 0.75
    assert weighted_occ_loss(loss, w).item() == 1.0
    assert weighted_occ_loss(loss, w, drop_zero=False).item() == 0.75


def test_pose_window_alignment_per_video_by_frame_index():
    # two videos of 2 and 3 snippets (32 and 48 frames); one person walking through each
    snippets = SnippetSet(np.zeros((5, 4), np.float32), ["a", "b"], np.array([0, 2, 5]))
    kp = np.random.default_rng(0).uniform(0, 100, size=(60, 17, 3)).astype(np.float32)
    tracks = {"a": {0: (np.arange(40), kp[:40])}, "b": {7: (np.arange(10, 58), kp[:48])}}
    cfg = UVADConfig(seg_len=16, seg_stride=8)
    obj = pose_objects(tracks, snippets, cfg, flip=False)
    # video a: windows start 0, 8, 16, 24 (frames up to 39 > 31: the tail maps to the last snippet)
    # video b: starts 10, 18, 26, 34, 42 (base 2)
    assert obj.lo.tolist() == [0, 0, 1, 1, 2, 3, 3, 4, 4]
    assert obj.hi.tolist() == [1, 2, 2, 2, 4, 5, 5, 5, 5]
    s = np.array([0.1, 0.7, 0.2, 0.9, 0.3])
    assert obj.weights_from_snippets(s).tolist() == np.float32([0.1, 0.7, 0.7, 0.7, 0.9, 0.9, 0.9, 0.3, 0.3]).tolist()
    zero = pose_objects(tracks, snippets, UVADConfig(seg_len=16, seg_stride=8, tail_fill="zero"), flip=False)
    assert zero.lo[3] == 1 and zero.hi[3] == 2  # start 24 < 32: only frames 24..31 count
    assert obj.x.shape == (9, 2, 16, 18) and len(obj.score_x) == (40 - 15) + (48 - 15)
