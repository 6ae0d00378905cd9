"""Video I/O: encode/decode round trips (mp4, avi, mkv), listing local and s3:// videos, and corrupt
files reported by name (garbage bytes, truncated containers, missing files)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from omnivad.video.io import VideoError, list_videos, read_frames, video_info, write_video
from omnivad.video.synth import ANOMALY_KINDS, moving_shapes, textured_objects, write_video_set


def _frames(n: int = 20, h: int = 32, w: int = 48) -> np.ndarray:
    """Smooth frames (codecs keep them close): a gradient that shifts with t."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(x * 4 + t * 3) % 256, (y * 6) % 256, np.full_like(x, 90 + t)], -1)
                     for t in range(n)]).astype(np.uint8)


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mkv"])
def test_write_read_round_trip(tmp_path, ext):
    frames = _frames()
    path = str(tmp_path / f"v{ext}")
    write_video(path, frames, fps=12.5)
    assert video_info(path) == (20, 12.5, (32, 48))
    back = read_frames(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames).mean() < 6  # lossy codec, high quality
    small = read_frames(path, size=(16, 24), gray=True, max_frames=5)
    assert small.shape == (5, 16, 24, 1)


def test_list_videos_local_sorted_filtered_recursive(tmp_path):
    for rel in ["b.mp4", "a.AVI", "sub/c.mkv", "notes.txt", "sub/d.npy"]:
        os.makedirs(os.path.dirname(tmp_path / rel), exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    root = str(tmp_path)
    assert list_videos(root) == [f"{root}/a.AVI", f"{root}/b.mp4", f"{root}/sub/c.mkv"]
    assert list_videos(root, exts=(".mkv",)) == [f"{root}/sub/c.mkv"]
    assert list_videos(f"{root}/b.mp4") == [f"{root}/b.mp4"]
    with pytest.raises(VideoError, match="nowhere"):
        list_videos(f"{root}/nowhere")


def test_s3_videos_list_and_decode(s3_server, s3_bucket, tmp_path):
    frames = _frames(n=18)
    write_video(f"s3://{s3_bucket}/vids/x.mp4", frames)  # written through fsspec
    write_video(str(tmp_path / "y.avi"), frames)
    s3_server.client().upload_file(str(tmp_path / "y.avi"), s3_bucket, "vids/sub/y.avi")
    uris = list_videos(f"s3://{s3_bucket}/vids")
    assert uris == [f"s3://{s3_bucket}/vids/sub/y.avi", f"s3://{s3_bucket}/vids/x.mp4"]
    for u in uris:
        assert video_info(u)[0] == 18
        assert read_frames(u).shape == (18, 32, 48, 3)


def test_corrupt_and_missing_videos_are_named(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"definitely not a video" * 40)
    for fn in (read_frames, video_info):
        with pytest.raises(VideoError, match=str(garbage)):
            fn(str(garbage))
    good = tmp_path / "good.avi"
    noise = np.random.default_rng(0).integers(0, 256, (40, 32, 48, 3), dtype=np.uint8)  # big frames: a small header
    write_video(str(good), noise)
    data = good.read_bytes()
    cut = tmp_path / "cut.avi"  # an AVI cut in half still opens: the header promises 40 frames
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=rf"{cut}: truncated video: decoded \d+ of the 40 frames"):
        read_frames(str(cut))
    cut_mp4 = tmp_path / "cut.mp4"  # an mp4 without its index does not open at all
    write_video(str(cut_mp4), _frames(n=40))
    cut_mp4.write_bytes(cut_mp4.read_bytes()[:2000])
    with pytest.raises(VideoError, match=f"{cut_mp4}: cannot open video"):
        read_frames(str(cut_mp4))
    with pytest.raises(VideoError, match="missing.mp4"):
        read_frames(str(tmp_path / "missing.mp4"))
    assert issubclass(VideoError, ValueError)


def test_moving_shapes_anomalies_only_inside_their_interval():
    normal = moving_shapes(40, size=(32, 32), seed=3, scene=1)
    assert normal.shape == (40, 32, 32, 3) and normal.dtype == np.uint8
    for kind in ANOMALY_KINDS:
        abn = moving_shapes(40, size=(32, 32), seed=3, scene=1, anomalies=[(10, 25, kind)])
        changed = np.abs(abn.astype(int) - normal).reshape(40, -1).max(1) > 0
        assert not changed[:10].any() and not changed[25:].any(), kind
        assert changed[10:25].mean() > 0.8, kind
    assert not np.array_equal(moving_shapes(8, scene=0)[0], moving_shapes(8, scene=1)[0])  # per-scene backgrounds
    with pytest.raises(ValueError, match="kind"):
        moving_shapes(10, anomalies=[(0, 5, "explosion")])


def test_textured_donor_frames_are_patches_on_grey_and_replayable():
    d = textured_objects(6, size=(32, 40), seed=2)
    assert d.shape == (6, 32, 40, 3) and d.dtype == np.uint8
    patch = (d != 110).any(-1)
    assert (patch.reshape(6, -1).mean(1) > 0.02).all() and (patch.reshape(6, -1).mean(1) < 0.8).all()
    assert np.array_equal(d, textured_objects(6, size=(32, 40), seed=2))
    assert not np.array_equal(d, textured_objects(6, size=(32, 40), seed=3))


def test_write_video_set_labels_and_annotations(tmp_path):
    truth = write_video_set(str(tmp_path), n_normal=2, n_abnormal=3, n_frames=(20, 30), size=(32, 32), prefix="s_")
    assert sorted(truth) == ["s_abnormal_002.mp4", "s_abnormal_003.mp4", "s_abnormal_004.mp4",
                             "s_normal_000.mp4", "s_normal_001.mp4"]
    labels = (tmp_path / "labels.csv").read_text().splitlines()
    assert labels[0] == "video,label,category" and len(labels) == 6
    ann = (tmp_path / "annotations.txt").read_text().splitlines()
    assert len(ann) == 3
    for line in ann:
        name, kind, start, end = line.split()
        assert kind in ANOMALY_KINDS
        assert truth[name] == [(int(start), int(end) + 1)]  # inclusive end in the file
        n = video_info(str(tmp_path / name))[0]
        assert 20 <= n <= 30 and int(end) < n
