"""jobs/zxvad.py end to end on Ray Train (1 worker, tiny videos): a worker killed mid-training, the
rerun resumes from the last checkpoint, G is frozen and the target scored."""

from __future__ import annotations

import json
import os

import pytest

from omnivad import config
from omnivad.engine import checkpoint as ckpt
from omnivad.video.synth import write_video_set
from omnivad.zxvad.zeroshot import run_zero_shot
from tests.faults import kill_at

pytestmark = pytest.mark.ray

TINY = [
    "zxvad.frame_size=[32, 32]", "zxvad.base_channels=4", "zxvad.memory_items=8", "zxvad.disc_channels=[4, 8, 8, 8]",
    "zxvad.r_layer=layer2", "zxvad.batch_size=2", "zxvad.iterations=4", "zxvad.checkpoint_every=2",
    "zxvad.log_every=1", "scaling.workers=1",
]


def test_zero_shot_job_resumes_and_scores_target(ray_local, tmp_path):
    src, tgt = tmp_path / "source", tmp_path / "target"
    write_video_set(str(src), n_normal=2, n_abnormal=0, n_frames=12, size=(32, 32), scene=0, seed=1)
    write_video_set(str(tgt), n_normal=1, n_abnormal=2, n_frames=16, size=(32, 32), scene=3, seed=2)
    out = str(tmp_path / "runs")
    cfg = config.load(None, TINY)

    with pytest.raises(Exception):  # the worker dies after step 3; step 2's checkpoint survives
        run_zero_shot(cfg, str(src), str(tgt), out, step_hooks=kill_at(3))
    (run,) = [d for d in os.listdir(out) if d.startswith("zxvad-")]
    assert not os.path.exists(os.path.join(out, run, "model.pt"))
    saved = [p.name for p in (tmp_path / "runs" / run).glob("ray/train/**/step-*")]
    assert "step-00000002" in saved and "step-00000004" not in saved, saved  # killed after step 3

    result = run_zero_shot(cfg, str(src), str(tgt), out)
    model = ckpt.read_model(result["model"])
    assert model["step"] == 4
    steps = [h["step"] for h in model["history"]]
    assert steps == [1, 2, 3, 4]  # steps 1-2 from the checkpoint, 3-4 after the resume (no replay of 1-2)
    saved = json.loads((tmp_path / "runs" / run / "results.json").read_text())
    assert saved["videos"] == 3 and saved["frames"] == 3 * (16 - 4)
    assert 0.0 <= saved["auc"] <= 1.0
    assert "| zxVAD |" in (tmp_path / "runs" / run / "results.md").read_text()

    again = run_zero_shot(cfg, str(src), str(tgt), out)  # finished: reuses model.pt
    assert again["model"] == result["model"] and again["auc"] == pytest.approx(result["auc"])


def test_job_reports_missing_source(tmp_path, monkeypatch, capsys):
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "jobs", "zxvad.py")
    spec = importlib.util.spec_from_file_location("zxvad_job", path)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    monkeypatch.setattr("sys.argv", ["zxvad.py", "--source", str(tmp_path / "nope"), "--target", str(tmp_path),
                                     "--out", str(tmp_path / "o")])
    assert job.main() == 1
    err = capsys.readouterr().err
    assert "zxvad: error:" in err and "nope" in err
