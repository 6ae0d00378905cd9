"""Snippet sampling, cropping, frame ground truth and the extraction plan (labels CSV + intervals file),
checked against hand computations; no Ray."""

from __future__ import annotations

import numpy as np
import pytest

from omnivad.config import VideoConfig
from omnivad.errors import CorpusError
from omnivad.video.extract import decode_videos, plan_videos, read_annotations
from omnivad.video.io import VideoError, write_video
from omnivad.video.snippets import SnippetStream, crop, frame_gt, n_snippets, rate_ratio, source_index
from omnivad.video.synth import moving_shapes, write_video_set

CFG = dict(resize=32, crop_size=24)


def test_snippet_counts_floor_and_ceil():
    assert [n_snippets(n) for n in (0, 15, 16, 31, 32, 33)] == [0, 0, 1, 1, 2, 2]
    assert [n_snippets(n, last_snippet="pad") for n in (0, 15, 16, 31, 32, 33)] == [0, 1, 1, 2, 2, 3]
    assert n_snippets(50, frames_per_snippet=8) == 6


def test_frame_gt_and_resampling_indices():
    assert frame_gt(10, [(2, 4), (8, 20)]).tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 1, 1]
    assert frame_gt(10, [(2, 4)], end_inclusive=False).tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    assert source_index(7, rate_ratio(30, 15)).tolist() == [0, 2, 4, 6]  # 30 → 15 fps: every other frame
    assert source_index(3, rate_ratio(10, 20)).tolist() == [0, 0, 1, 1, 2, 2]  # 10 → 20 fps: each twice
    assert source_index(5, rate_ratio(25, None)).tolist() == [0, 1, 2, 3, 4]


def test_ten_crop_and_centre_crop():
    frames = np.arange(2 * 6 * 8 * 3, dtype=np.uint8).reshape(2, 6, 8, 3)
    ten = crop(frames, 4, "ten")
    assert ten.shape == (10, 2, 4, 4, 3)
    assert np.array_equal(ten[0], frames[:, :4, :4]) and np.array_equal(ten[3], frames[:, 2:, 4:])
    assert np.array_equal(ten[4], frames[:, 1:5, 2:6])  # centre
    assert all(np.array_equal(ten[5 + i], ten[i][:, :, ::-1]) for i in range(5))  # flips
    assert np.array_equal(crop(frames, 4, "center")[0], ten[4])


def test_snippet_stream_counts_gt_and_fps(tmp_path):
    path = str(tmp_path / "v.mp4")
    write_video(path, moving_shapes(50, size=(32, 48), seed=1), fps=25)
    s = SnippetStream(path, VideoConfig(**CFG))
    snippets = list(s)
    assert [i for i, _ in snippets] == [0, 1, 2]  # floor(50 / 16)
    assert snippets[0][1].shape == (10, 16, 24, 24, 3)
    assert (s.n_src, s.n_frames, s.fps) == (50, 50, 25.0)
    assert s.gt([(16, 20)]).nonzero()[0].tolist() == [16, 17, 18, 19, 20]
    padded = SnippetStream(path, VideoConfig(**CFG, last_snippet="pad", crops="center"))
    clips = [c for _, c in padded]
    assert len(clips) == 4 and clips[-1].shape == (1, 16, 24, 24, 3)
    assert np.array_equal(clips[-1][0, 2], clips[-1][0, 15])  # frames 50..63 repeat frame 49
    half = SnippetStream(path, VideoConfig(**CFG, fps=12.5, crops="center"))
    assert len(list(half)) == 1 and half.n_frames == 25  # 25 frames at 12.5 fps → 1 snippet
    assert half.gt([(16, 20)]).nonzero()[0].tolist() == [8, 9, 10]  # source frames 16, 18, 20


def test_decode_videos_chunks_and_reports_errors(tmp_path):
    good, short, bad = (str(tmp_path / n) for n in ("good.mp4", "short.mp4", "bad.mp4"))
    write_video(good, moving_shapes(70, size=(32, 32)))
    write_video(short, moving_shapes(10, size=(32, 32)))
    (tmp_path / "bad.mp4").write_bytes(b"\x00garbage" * 100)
    cfg = VideoConfig(**CFG, chunk_snippets=2, crops="center")
    blocks = list(decode_videos({"uri": np.array([good, short, bad], dtype=object)}, cfg))
    good_blocks = [b for b in blocks if b["uri"][0] == good]
    assert [b["index"].tolist() for b in good_blocks] == [[0, 1], [2, 3]]  # 70 frames → 4 snippets
    assert [b["last"].tolist() for b in good_blocks] == [[False, False], [False, True]]
    assert good_blocks[-1]["n_frames"][-1] == 70 and good_blocks[-1]["fps"][-1] == 25.0
    errors = {b["uri"][0]: b["error"][0] for b in blocks if b["index"][0] < 0}
    assert set(errors) == {short, bad}
    assert "too short" in errors[short] and errors[bad].startswith(bad)


def test_plan_reads_labels_and_intervals_and_names_inconsistencies(tmp_path):
    truth = write_video_set(str(tmp_path), n_normal=2, n_abnormal=2, n_frames=20, size=(32, 32))
    items = plan_videos(str(tmp_path), str(tmp_path / "labels.csv"), str(tmp_path / "annotations.txt"))
    assert [(i.video_id, i.label) for i in items] == [("abnormal_002", 1), ("abnormal_003", 1),
                                                      ("normal_000", 0), ("normal_001", 0)]
    for i in items:
        name = i.video_id + ".mp4"
        assert [(s, e + 1) for s, e in i.intervals] == truth[name]
        assert i.category == ("Normal" if i.label == 0 else "fast" if i.video_id.endswith("2") else "reverse")
    # no labels file: abnormal exactly when annotated
    assert [i.label for i in plan_videos(str(tmp_path), None, str(tmp_path / "annotations.txt"))] == [1, 1, 0, 0]
    # UCF-Crime layout: category token, -1 pairs ignored
    ucf = tmp_path / "ucf.txt"
    ucf.write_text("abnormal_002.mp4  Arson  3 9  12 14\nabnormal_003.mp4 Fighting 5 7 -1 -1\n")
    assert read_annotations(str(ucf)) == {"abnormal_002.mp4": ("Arson", [(3, 9), (12, 14)]),
                                          "abnormal_003.mp4": ("Fighting", [(5, 7)])}
    partial = tmp_path / "partial.txt"
    partial.write_text("abnormal_002.mp4 3 9\n")
    with pytest.raises(VideoError, match="abnormal_003.mp4: abnormal test video without intervals"):
        plan_videos(str(tmp_path), str(tmp_path / "labels.csv"), str(partial))
    train = plan_videos(str(tmp_path), str(tmp_path / "labels.csv"), str(partial), split="train")
    assert [i.intervals for i in train] == [[(3, 9)], None, [], []]  # weak labels: gt unknown
    bad_labels = tmp_path / "bad.csv"
    bad_labels.write_text("video,label\nnormal_000.mp4,0\n")
    with pytest.raises(VideoError, match="abnormal_002.mp4: no label in"):
        plan_videos(str(tmp_path), str(bad_labels))
    bad_labels.write_text("video,label\nghost.mp4,1\n")
    with pytest.raises(VideoError, match="ghost.mp4"):
        plan_videos(str(tmp_path), str(bad_labels))
    (tmp_path / "wrong.txt").write_text("normal_000.mp4 2 5\n")
    with pytest.raises(VideoError, match="normal_000.mp4: labelled normal but"):
        plan_videos(str(tmp_path), str(tmp_path / "labels.csv"), str(tmp_path / "wrong.txt"), split="train")


def test_plan_id_prefix_prefixes_every_id_and_keeps_labels_keyed_by_file(tmp_path):
    """``jobs/extract.py --id-prefix t_``: every video id of the extraction carries the prefix (so a test split whose
    files share their names with the training split's can join the same corpus), while the labels CSV and the
    annotations stay keyed by the file names; a prefix that is not a valid name is refused before any decoding."""
    write_video_set(str(tmp_path), n_normal=1, n_abnormal=1, n_frames=20, size=(32, 32))
    labels, ann = str(tmp_path / "labels.csv"), str(tmp_path / "annotations.txt")
    plain = plan_videos(str(tmp_path), labels, ann)
    prefixed = plan_videos(str(tmp_path), labels, ann, id_prefix="t_")
    assert [i.video_id for i in prefixed] == ["t_" + i.video_id for i in plain] == ["t_abnormal_001", "t_normal_000"]
    assert [(i.label, i.intervals, i.uri) for i in prefixed] == [(i.label, i.intervals, i.uri) for i in plain]
    with pytest.raises(CorpusError, match=r"--id-prefix '\.\./x'"):
        plan_videos(str(tmp_path), labels, ann, id_prefix="../x")
