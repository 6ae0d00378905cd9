"""Frame-level metrics: expansion, hand-computed AUC/AP/PR-AUC, corpus evaluation and fold aggregation."""

from __future__ import annotations

import io
import json
import math
import os

import numpy as np
import pytest

from omnivad.corpus.format import Corpus, Video, write_videos
from omnivad.errors import MetricError
from omnivad.metrics import (
    align_frames,
    aggregate_folds,
    evaluate_corpus,
    evaluate_dirs,
    evaluate_domain,
    frame_metrics,
    frame_scores,
    load_score_dir,
)

# --------------------------------------------------------------------------------------------------
# frame_scores


def test_frame_scores_repeat_and_pad_with_last() -> None:
    out = frame_scores(np.array([1.0, 2.0]), 40)
    assert out.shape == (40,)
    assert (out[:16] == 1.0).all() and (out[16:] == 2.0).all()  # 16 + 16 + 8 padded with the last score


def test_frame_scores_truncate() -> None:
    out = frame_scores(np.array([1.0, 2.0, 3.0]), 20)
    np.testing.assert_array_equal(out, [1.0] * 16 + [2.0] * 4)


def test_frame_scores_exact_length_and_custom_fps() -> None:
    np.testing.assert_array_equal(frame_scores(np.array([0.5, 0.25]), 32), [0.5] * 16 + [0.25] * 16)
    np.testing.assert_array_equal(frame_scores(np.array([1.0, 3.0]), 5, frames_per_snippet=2), [1, 1, 3, 3, 3])


def test_frame_scores_averages_crops() -> None:
    s = np.array([[0.0, 2.0], [1.0, 3.0], [4.0, 4.0]])  # (T=3, crops=2) -> [1, 2, 4]
    np.testing.assert_array_equal(frame_scores(s, 6, frames_per_snippet=2), [1, 1, 2, 2, 4, 4])
    np.testing.assert_array_equal(frame_scores(np.array([[0.3], [0.7]]), 2, 1), [0.3, 0.7])


def test_frame_scores_bad_shape() -> None:
    with pytest.raises(MetricError, match="shape"):
        frame_scores(np.zeros((2, 2, 2)), 10)
    with pytest.raises(MetricError, match="empty"):
        frame_scores(np.zeros(0), 10)


# --------------------------------------------------------------------------------------------------
# frame_metrics (hand computations)

# positives 0.35, 0.8; negatives 0.1, 0.4. Mann-Whitney: 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4.
# AP (step): thresholds down: 0.8 (P=1, R=.5), 0.4 (P=.5, R=.5), 0.35 (P=2/3, R=1) -> .5*1 + .5*2/3 = 5/6.
# PR trapezoid over (R, P) = (1, 2/3) -> (.5, .5) -> (.5, 1) -> (0, 1): .5*(2/3+.5)/2 + 0 + .5*1 = 19/24.
HAND_S = np.array([0.1, 0.4, 0.35, 0.8])
HAND_G = np.array([0, 0, 1, 1], dtype=np.uint8)


def test_frame_metrics_hand_case() -> None:
    m = frame_metrics(HAND_S, HAND_G)
    assert m["auc"] == pytest.approx(0.75, abs=1e-12)
    assert m["ap"] == pytest.approx(5 / 6, abs=1e-12)
    assert m["pr_auc"] == pytest.approx(19 / 24, abs=1e-12)
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in m.values())


def test_frame_metrics_perfect_and_inverted() -> None:
    g = np.array([0, 0, 1, 1])
    assert frame_metrics(np.array([0.0, 0.1, 0.9, 1.0]), g) == {"auc": 1.0, "ap": 1.0, "pr_auc": 1.0}
    assert frame_metrics(np.array([1.0, 0.9, 0.1, 0.0]), g)["auc"] == 0.0


def test_frame_metrics_ties_count_half() -> None:
    # all scores equal: every positive/negative pair is a tie -> AUC 1/2
    assert frame_metrics(np.full(4, 0.3), HAND_G)["auc"] == 0.5


@pytest.mark.parametrize("gt,kind", [(np.zeros(5), "normal"), (np.ones(5), "abnormal")])
def test_frame_metrics_single_class(gt: np.ndarray, kind: str) -> None:
    with pytest.raises(MetricError, match=rf"domain 'ucf'.*only {kind} frames.*both normal and abnormal"):
        frame_metrics(np.linspace(0, 1, 5), gt.astype(np.uint8), domain="ucf")


def test_frame_metrics_rejects_nan_length_and_non_binary() -> None:
    with pytest.raises(MetricError, match="NaN"):
        frame_metrics(np.array([0.1, np.nan, 0.3, 0.4]), HAND_G)
    with pytest.raises(MetricError, match="3 frame scores but 4"):
        frame_metrics(np.array([0.1, 0.2, 0.3]), HAND_G)
    with pytest.raises(MetricError, match="0/1"):
        frame_metrics(HAND_S, np.array([0, 2, 1, 1]))


# --------------------------------------------------------------------------------------------------
# evaluate_domain

# A (abnormal): gt [0,1] scores [.1,.2]; B (abnormal): gt [0,1] scores [.8,.9]; both per-video AUC = 1.
# Pooled over A+B: positives .2,.9 vs negatives .1,.8 -> (1 + 2)/4 = 0.75  (!= mean of per-video = 1).
# With C (normal): gt [0,0] scores [.5,.5]: negatives .1,.8,.5,.5 -> .2 beats 1, .9 beats 4 -> 5/8.
VIDS = [
    ("A", np.array([0, 1], np.uint8), 1),
    ("B", np.array([0, 1], np.uint8), 1),
    ("C", np.array([0, 0], np.uint8), 0),
]
SCORES = {"A": np.array([0.1, 0.2]), "B": np.array([0.8, 0.9]), "C": np.array([0.5, 0.5])}


def test_evaluate_domain_pooled_differs_from_mean_per_video() -> None:
    per_video = [frame_metrics(SCORES[v], g)["auc"] for v, g, _ in VIDS[:2]]
    assert per_video == [1.0, 1.0]
    r = evaluate_domain(VIDS[:2], SCORES, "d", frames_per_snippet=1)
    assert r["auc"] == pytest.approx(0.75, abs=1e-12)
    assert r["auc_abnormal"] == pytest.approx(0.75, abs=1e-12)


def test_evaluate_domain_auc_abnormal_and_counts() -> None:
    r = evaluate_domain(VIDS, SCORES, "d", frames_per_snippet=1)
    assert r["auc"] == pytest.approx(5 / 8, abs=1e-12)
    assert r["auc_abnormal"] == pytest.approx(0.75, abs=1e-12)
    assert r["n_videos"] == 3 and r["n_frames"] == 6
    # each video's scores stay with its own gt whatever the order
    r2 = evaluate_domain(VIDS[::-1], SCORES, "d", frames_per_snippet=1)
    assert r2["auc"] == pytest.approx(r["auc"], abs=1e-12)


def test_evaluate_domain_expands_16_and_aligns() -> None:
    # video X: 2 snippets, gt of 20 frames (truncate); Y: 1 snippet, gt of 20 frames (pad)
    gx = np.array([0] * 16 + [1] * 4, np.uint8)
    gy = np.zeros(20, np.uint8)
    r = evaluate_domain([("X", gx, 1), ("Y", gy, 0)], {"X": np.array([0.2, 0.9]), "Y": np.array([[0.1, 0.5]])}, "d")
    assert r["n_frames"] == 40
    assert r["auc"] == 1.0  # positives 0.9 vs negatives 0.2 and 0.3 (crop mean)
    assert r["auc_abnormal"] == 1.0


def test_align_scores_fits_the_scores_to_every_gt_frame() -> None:
    # T=2 snippets (32 scored frames), gt of 20 frames: 10 normal then 10 abnormal
    gt = np.array([0] * 10 + [1] * 10)
    fs, g = align_frames(np.array([0.2, 0.8]), gt, "scores")
    assert g.tolist() == gt.tolist() and fs.tolist() == [0.2] * 16 + [0.8] * 4
    # positives: 6 frames at .2 (tie the 10 negatives at .2), 4 at .8 (beat them): (40 + 0.5 * 60) / 100
    m = evaluate_domain([("v", gt, 1)], {"v": np.array([0.2, 0.8])}, "d", align="scores")
    assert m["auc"] == pytest.approx(0.70) and m["n_frames"] == 20


def test_align_gt_fits_the_gt_to_16_t_frames() -> None:
    gt = np.array([0] * 10 + [1] * 10)
    fs, g = align_frames(np.array([0.2, 0.8]), gt, "gt")  # RTFM: gt padded with normal frames to 16*T = 32
    assert fs.tolist() == [0.2] * 16 + [0.8] * 16 and g.tolist() == [0] * 10 + [1] * 10 + [0] * 12
    # positives: 6 at .2, 4 at .8; negatives: 10 at .2, 12 at .8
    # wins 4*10, ties 0.5*(4*12 + 6*10) -> (40 + 54) / (10 * 22)
    m = evaluate_domain([("v", gt, 1)], {"v": np.array([0.2, 0.8])}, "d", align="gt")
    assert m["auc"] == pytest.approx(94 / 220) and m["n_frames"] == 32
    long_gt = np.array([0] * 20 + [1] * 20)  # longer than 16*T: truncated to the 32 scored frames
    fs, g = align_frames(np.array([0.2, 0.8]), long_gt, "gt")
    assert len(fs) == len(g) == 32 and g.tolist() == long_gt[:32].tolist()
    with pytest.raises(MetricError, match="metrics.align"):
        align_frames(np.array([0.2]), gt, "frames")


def test_evaluate_domain_auc_abnormal_none_without_abnormal_mix() -> None:
    vids = [("A", np.array([1, 1], np.uint8), 1), ("C", np.array([0, 0], np.uint8), 0)]
    r = evaluate_domain(vids, {"A": np.array([0.9, 0.8]), "C": np.array([0.1, 0.2])}, "d", frames_per_snippet=1)
    assert r["auc"] == 1.0 and r["auc_abnormal"] is None


def test_evaluate_domain_missing_scores() -> None:
    with pytest.raises(MetricError, match=r"domain 'd': 1 videos without scores: B"):
        evaluate_domain(VIDS, {"A": SCORES["A"], "C": SCORES["C"]}, "d", frames_per_snippet=1)


# --------------------------------------------------------------------------------------------------
# evaluate_corpus on a real (tiny) corpus

C = 4


def _video(vid: str, domain: str, split: str, label: int, t: int, gt: list[int] | None, crops: int = 1) -> Video:
    feats = np.zeros((t, crops, C), np.float32)
    return Video(
        video_id=vid, domain=domain, split=split, label=label, features=feats,
        gt=None if gt is None else np.asarray(gt, np.uint8),
    )


@pytest.fixture()
def corpus_uri(tmp_path: os.PathLike) -> str:
    uri = str(tmp_path / "corpus")
    # domain "ucf": v1 abnormal (2 snippets, 32 frames: second half abnormal), v2 normal (1 snippet, 20 frames)
    # domain "xd": v1 abnormal (2 snippets, 32 frames), n3 normal (1 snippet, 16 frames), nogt (no gt)
    # "v1" exists in both domains (ids are unique only within a domain)
    videos = [
        _video("v1", "ucf", "test", 1, 2, [0] * 16 + [1] * 16),
        _video("v2", "ucf", "test", 0, 1, [0] * 20),
        _video("tr1", "ucf", "train", 1, 3, None),
        _video("v1", "xd", "test", 1, 2, [0] * 16 + [1] * 16, crops=2),
        _video("n3", "xd", "test", 0, 1, [0] * 16, crops=2),
        _video("nogt", "xd", "test", 0, 1, None, crops=2),
    ]
    write_videos(uri, videos, feature_dim=C)
    return uri


def _good_scores() -> dict[str, np.ndarray]:
    return {
        # ucf frames: v1 -> .2 x16 (normal), .9 x16 (abn); v2 -> .5 x20. AUC 1.
        "ucf/v1": np.array([0.2, 0.9]),
        "v2": np.array([0.5]),
        # xd: v1 -> .6 x16 (normal), .4 x16 (abn); n3 -> .3 x16.
        # positives .4 vs negatives .6 (16) and .3 (16): half the pairs won -> AUC 0.5. auc_abnormal 0.
        "xd/v1": np.array([[0.6, 0.6], [0.3, 0.5]]),
        "n3": np.array([[0.3, 0.3]]),
    }


def test_evaluate_corpus_per_domain(corpus_uri: str) -> None:
    r = evaluate_corpus(Corpus.open(corpus_uri), _good_scores())
    ucf, xd = r["per_domain"]["ucf"], r["per_domain"]["xd"]
    assert ucf["auc"] == 1.0 and ucf["ap"] == 1.0 and ucf["pr_auc"] == 1.0 and ucf["auc_abnormal"] == 1.0
    assert ucf["n_videos"] == 2 and ucf["n_frames"] == 52
    assert xd["auc"] == pytest.approx(0.5, abs=1e-12)
    assert xd["auc_abnormal"] == 0.0
    assert xd["n_videos"] == 2 and xd["n_frames"] == 48  # the video without gt is left out
    # AP by hand for xd: frames sorted by score: .6 (16 neg), .4 (16 pos), .3 (16 neg)
    # threshold .4 -> P = 16/32, R = 1 (only recall step) -> AP = 0.5
    assert xd["ap"] == pytest.approx(0.5, abs=1e-12)
    assert r["mean_auc"] == pytest.approx(0.75, abs=1e-12)
    assert r["mean_ap"] == pytest.approx(0.75, abs=1e-12)
    json.dumps(r)


def test_evaluate_corpus_domain_subset_ignores_other_domains(corpus_uri: str) -> None:
    r = evaluate_corpus(Corpus.open(corpus_uri), _good_scores(), domains=["ucf"])
    assert list(r["per_domain"]) == ["ucf"] and r["mean_auc"] == 1.0
    with pytest.raises(MetricError, match="unknown domains nope"):
        evaluate_corpus(Corpus.open(corpus_uri), _good_scores(), domains=["nope"])


def test_evaluate_corpus_ambiguous_bare_id(corpus_uri: str) -> None:
    s = _good_scores()
    s["v1"] = s.pop("ucf/v1")
    del s["xd/v1"]
    with pytest.raises(MetricError, match=r"v1 \(ucf, xd\).*domain/video_id"):
        evaluate_corpus(Corpus.open(corpus_uri), s)
    # unambiguous when only one domain is evaluated
    r = evaluate_corpus(Corpus.open(corpus_uri), s, domains=["ucf"])
    assert r["per_domain"]["ucf"]["auc"] == 1.0


def test_evaluate_corpus_missing_scores_named(corpus_uri: str) -> None:
    s = _good_scores()
    del s["v2"], s["n3"]
    with pytest.raises(MetricError, match=r"2 test videos without scores: ucf/v2, xd/n3"):
        evaluate_corpus(Corpus.open(corpus_uri), s)


def test_evaluate_corpus_missing_scores_truncated_list(tmp_path: os.PathLike) -> None:
    uri = str(tmp_path / "c")
    vids = [_video(f"v{i:02d}", "d", "test", i % 2, 1, [0] * 8 + [1] * 8) for i in range(13)]
    write_videos(uri, vids, feature_dim=C)
    with pytest.raises(MetricError, match=r"13 test videos without scores: d/v00, .*d/v09, \.\.\. \(3 more\)"):
        evaluate_corpus(Corpus.open(uri), {})


def test_evaluate_corpus_extra_scores_named(corpus_uri: str) -> None:
    s = _good_scores()
    s["ghost"] = np.array([0.1])
    s["tr1"] = np.array([0.1, 0.2, 0.3])  # a train video is not a test video
    s["ucf/n3"] = np.array([0.1])  # n3 belongs to xd
    with pytest.raises(MetricError, match=r"3 scores for ids that are not test videos: ghost, tr1, ucf/n3"):
        evaluate_corpus(Corpus.open(corpus_uri), s)


def test_evaluate_corpus_scores_for_video_without_gt_accepted(corpus_uri: str) -> None:
    s = _good_scores()
    s["nogt"] = np.array([[0.0, 0.0]])
    assert evaluate_corpus(Corpus.open(corpus_uri), s)["per_domain"]["xd"]["n_videos"] == 2


def test_evaluate_corpus_wrong_length_named(corpus_uri: str) -> None:
    s = _good_scores()
    s["v2"] = np.array([0.5, 0.5, 0.5])
    with pytest.raises(MetricError, match=r"ucf/v2: scores shape \(3,\), video has T=1 snippets"):
        evaluate_corpus(Corpus.open(corpus_uri), s)


def test_evaluate_corpus_domain_without_gt(tmp_path: os.PathLike) -> None:
    uri = str(tmp_path / "c")
    write_videos(uri, [_video("a", "d", "test", 1, 1, None), _video("b", "e", "test", 1, 1, [0] * 8 + [1] * 8)],
                 feature_dim=C)
    corpus = Corpus.open(uri)
    r = evaluate_corpus(corpus, {"b": np.array([0.5])})  # default: domains with gt only
    assert list(r["per_domain"]) == ["e"]
    with pytest.raises(MetricError, match="domain 'd' has no 'test' videos with frame-level ground truth"):
        evaluate_corpus(corpus, {"b": np.array([0.5])}, domains=["d"])


def test_evaluate_corpus_single_class_domain(tmp_path: os.PathLike) -> None:
    uri = str(tmp_path / "c")
    write_videos(uri, [_video("a", "d", "test", 0, 1, [0] * 16)], feature_dim=C)
    with pytest.raises(MetricError, match="domain 'd'.*only normal frames"):
        evaluate_corpus(Corpus.open(uri), {"a": np.array([0.5])})


# --------------------------------------------------------------------------------------------------
# load_score_dir / aggregate_folds / evaluate_dirs


def _write_scores(root: str, scores: dict[str, np.ndarray]) -> str:
    for key, arr in scores.items():
        path = os.path.join(root, key + ".npy")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, arr)
    return root


def test_load_score_dir_with_domain_subdirs(tmp_path: os.PathLike) -> None:
    root = _write_scores(str(tmp_path / "s"), {"v2": np.array([0.5]), "ucf/v1": np.array([0.2, 0.9]),
                                              "xd/v1": np.array([[0.1, 0.2]])})
    (tmp_path / "s" / "notes.txt").write_text("ignored")
    (tmp_path / "s" / "xd" / "log.json").write_text("{}")
    out = load_score_dir(root)
    assert sorted(out) == ["ucf/v1", "v2", "xd/v1"]
    np.testing.assert_array_equal(out["ucf/v1"], [0.2, 0.9])
    assert out["xd/v1"].shape == (1, 2)


def test_load_score_dir_errors(tmp_path: os.PathLike) -> None:
    with pytest.raises(MetricError, match="not found"):
        load_score_dir(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricError, match="no .npy score files"):
        load_score_dir(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.npy").write_bytes(b"not a numpy file")
    with pytest.raises(MetricError, match=r"broken\.npy: cannot read scores"):
        load_score_dir(str(bad))
    pick = tmp_path / "pick"
    pick.mkdir()
    np.save(pick / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(MetricError, match=r"obj\.npy"):
        load_score_dir(str(pick))


def _fold(auc_u: float, ap_u: float, auc_x: float, ap_x: float) -> dict:
    return {
        "per_domain": {"ucf": {"auc": auc_u, "ap": ap_u}, "xd": {"auc": auc_x, "ap": ap_x}},
        "mean_auc": (auc_u + auc_x) / 2,
        "mean_ap": (ap_u + ap_x) / 2,
    }


def test_aggregate_folds_mean_and_sample_std() -> None:
    agg = aggregate_folds([_fold(0.8, 0.5, 0.6, 0.4), _fold(0.9, 0.5, 0.6, 0.6), _fold(1.0, 0.5, 0.6, 0.8)])
    u, x = agg["per_domain"]["ucf"], agg["per_domain"]["xd"]
    # sample std (ddof=1): sqrt(sum of squared deviations / (n - 1))
    assert u["auc"] == pytest.approx(0.9) and u["auc_std"] == pytest.approx(math.sqrt(0.02 / 2))
    assert u["ap"] == pytest.approx(0.5) and u["ap_std"] == pytest.approx(0.0, abs=1e-15)
    assert x["auc"] == pytest.approx(0.6) and x["ap"] == pytest.approx(0.6)
    assert x["ap_std"] == pytest.approx(math.sqrt(0.08 / 2))
    assert agg["mean_auc"] == pytest.approx(0.75) and agg["mean_auc_std"] == pytest.approx(math.sqrt(0.005 / 2))
    assert agg["folds"] == 3 and u["n"] == 3


def test_aggregate_folds_one_fold_has_no_std() -> None:
    agg = aggregate_folds([_fold(0.8, 0.5, 0.6, 0.4)])
    assert agg["per_domain"]["ucf"]["auc"] == pytest.approx(0.8)
    assert agg["per_domain"]["ucf"]["auc_std"] is None and agg["mean_auc_std"] is None
    assert agg["per_domain"]["ucf"]["n"] == 1


def test_aggregate_folds_mismatched_domains() -> None:
    f2 = _fold(0.5, 0.5, 0.5, 0.5)
    del f2["per_domain"]["xd"]
    with pytest.raises(MetricError, match="fold 1"):
        aggregate_folds([_fold(0.5, 0.5, 0.5, 0.5), f2])
    with pytest.raises(MetricError):
        aggregate_folds([])


def test_evaluate_dirs_one_and_several(corpus_uri: str, tmp_path: os.PathLike) -> None:
    d1 = _write_scores(str(tmp_path / "f1"), _good_scores())
    s2 = _good_scores()
    s2["ucf/v1"] = np.array([0.9, 0.2])  # inverted: ucf AUC 0 on the 32 frames of v1 vs v2 at .5 -> see below
    d2 = _write_scores(str(tmp_path / "f2"), s2)
    one = evaluate_dirs(corpus_uri, [d1])
    assert one["per_domain"]["ucf"]["auc"] == 1.0 and one["mean_auc"] == pytest.approx(0.75)
    assert one["scores"] == d1 and one["corpus"] == corpus_uri and "fingerprint" in one
    # fold 2, ucf: positives .2 (16) vs negatives .9 (16) and .5 (20): all lost -> AUC 0; mean_auc = .25
    two = evaluate_dirs(corpus_uri, [d1, d2])
    assert [f["scores"] for f in two["folds"]] == [d1, d2]
    assert two["folds"][1]["per_domain"]["ucf"]["auc"] == 0.0
    assert two["per_domain"]["ucf"]["auc"] == pytest.approx(0.5)
    assert two["per_domain"]["ucf"]["auc_std"] == pytest.approx(math.sqrt(0.5))  # ddof=1 of (1, 0)
    assert two["mean_auc"] == pytest.approx(0.5) and two["mean_auc_std"] == pytest.approx(math.sqrt(0.125))
    assert two["n_folds"] == 2
    json.loads(json.dumps(two))


def test_evaluate_dirs_names_the_bad_dir(corpus_uri: str, tmp_path: os.PathLike) -> None:
    s = _good_scores()
    del s["n3"]
    d = _write_scores(str(tmp_path / "f"), s)
    with pytest.raises(MetricError, match=r"f vs .*1 test videos without scores: xd/n3"):
        evaluate_dirs(corpus_uri, [d])


def test_load_score_dir_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="scores-bucket")
        for key, arr in {"v2": np.array([0.5]), "ucf/v1": np.array([0.2, 0.9])}.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            s3.put_object(Bucket="scores-bucket", Key=f"scores/{key}.npy", Body=buf.getvalue())
        s3.put_object(Bucket="scores-bucket", Key="scores/README", Body=b"x")
        s3.put_object(Bucket="scores-bucket", Key="scores/xd/bad.npy", Body=b"junk")
        with pytest.raises(MetricError, match=r"s3://scores-bucket/scores/xd/bad\.npy"):
            load_score_dir("s3://scores-bucket/scores")
        s3.delete_object(Bucket="scores-bucket", Key="scores/xd/bad.npy")
        out = load_score_dir("s3://scores-bucket/scores/")
        assert sorted(out) == ["ucf/v1", "v2"]
        np.testing.assert_array_equal(out["ucf/v1"], [0.2, 0.9])
    finally:
        server.stop()
