"""Issue 16 items 2, 5, 9 without Ray: thresholds, predict, export/convert and the notebook API."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from omnivad import config
from omnivad.config import dump
from omnivad.engine.checkpoint import write_model
from omnivad.engine.threshold import f1_optimal
from omnivad.errors import CorpusError
from omnivad.methods.registry import get_method, list_methods
from omnivad.prediction import intervals, read_feature_dir
from tests.methods.test_contract import TINY

ROOT = Path(__file__).resolve().parents[2]
C = 12


def _model(tmp_path: Path, name: str, seed: int = 0) -> str:
    torch.manual_seed(seed)
    cfg = config.load(overrides=[f"model.method={name}", *TINY])
    net = get_method(name).build(cfg, ["A", "B"], C)
    path = str(tmp_path / f"{name}.pt")
    write_model(path, {"model": net.state_dict(), "method": name, "domains": ["A", "B"], "feature_dim": C,
                       "selected": "final@0", "config": dump(cfg)})
    return path


# ---------------------------------------------------------------------------------------------- thresholds
def test_f1_optimal_threshold_exact() -> None:
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    y = np.array([1, 1, 0, 1, 0, 0])
    # t=0.6: tp 3, predicted 4, positives 3 → F1 = 6/7 (t=0.8: 2·2/(2+3) = 0.8)
    t, f1 = f1_optimal(s, y)
    assert t == 0.6 and f1 == pytest.approx(6 / 7, abs=1e-12)
    assert f1_optimal(np.array([0.5, 0.5, 0.1]), np.array([1, 0, 0])) == (0.5, pytest.approx(2 / 3))
    with pytest.raises(ValueError, match="no abnormal"):
        f1_optimal(s, np.zeros(6))


def test_intervals_end_exclusive() -> None:
    f = np.array([0.1, 0.6, 0.7, 0.2, 0.9, 0.9])
    assert intervals(f, 0.5) == [(1, 3), (4, 6)]
    assert intervals(f, 0.95) == []


# ---------------------------------------------------------------------------------------------- predict
def test_feature_dir_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rt = tmp_path / "rtfm"
    rt.mkdir()
    a, b = rng.normal(size=(5, C)).astype(np.float32), rng.normal(size=(6, 3, C)).astype(np.float32)
    np.save(rt / "a.npy", a)
    np.save(rt / "b.npy", b)
    got = read_feature_dir(str(rt))
    assert got["a"].shape == (1, 5, C) and got["b"].shape == (3, 6, C)
    np.testing.assert_array_equal(got["b"], b.transpose(1, 0, 2))
    xd = tmp_path / "xd"
    xd.mkdir()
    for k in range(2):
        np.save(xd / f"v1__{k}.npy", a + k)
    got = read_feature_dir(str(xd))
    assert list(got) == ["v1"] and got["v1"].shape == (2, 5, C)
    np.testing.assert_array_equal(got["v1"][1], a + 1)
    np.testing.assert_array_equal(read_feature_dir(str(rt), "ktc")["b"], b)  # (K,T,C) read as is
    np.save(xd / "v1__3.npy", a)
    with pytest.raises(CorpusError, match="without gaps"):
        read_feature_dir(str(xd))
    with pytest.raises(CorpusError, match="no .npy"):
        read_feature_dir(str(tmp_path / "rtfm" / "none"))


def test_predict_cli_writes_snippets_frames_csv_and_intervals(tmp_path: Path) -> None:
    from omnivad.api import load_model
    from omnivad.cli import main

    model = _model(tmp_path, "null-mil")
    feats = tmp_path / "feats"
    feats.mkdir()
    x = np.random.default_rng(1).normal(size=(7, C)).astype(np.float32)
    np.save(feats / "clip.npy", x)
    out = tmp_path / "pred"
    assert main(["predict", "--model", model, "--features", str(feats), "--out", str(out), "--domain", "B",
                 "--threshold", "0.5"]) == 0
    want = get_method("null-mil").score(load_model(model).model, torch.from_numpy(x), "B").numpy()
    snip = np.load(out / "snippets" / "clip.npy")
    assert snip.dtype == np.float32 and snip.shape == (7,)
    np.testing.assert_allclose(snip, want, atol=1e-6)
    np.testing.assert_array_equal(np.load(out / "frames" / "clip.npy"), np.repeat(snip, 16))
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert rows == [{"video_id": "clip", "n_snippets": "7", "n_frames": "112", "max_score": repr(float(snip.max())),
                     "snippets": "snippets/clip.npy", "frames": "frames/clip.npy"}]
    spans = [(int(r["start_frame"]), int(r["end_frame"])) for r in csv.DictReader(open(out / "intervals.csv"))]
    assert spans == intervals(np.repeat(snip, 16), 0.5)
    # --threshold run needs the run's threshold.json beside the model
    assert main(["predict", "--model", model, "--features", str(feats), "--out", str(out), "--threshold", "run"]) == 1
    (tmp_path / "threshold.json").write_text('{"rule": "f1-optimal-validation-frames", "value": 0.25, "val_f1": 0.5}')
    assert main(["predict", "--model", model, "--features", str(feats), "--out", str(out), "--threshold", "run"]) == 0
    assert '"value": 0.25' in (out / "threshold.json").read_text()


# ---------------------------------------------------------------------------------------------- export / convert
def _check_export(model: str, fmt: str, out: str, domain: str | None, shapes: list[tuple[int, int]]) -> None:
    from omnivad.api import load_model
    from omnivad.export import export_model, load_exported

    export_model(model, fmt, out, domain)
    fn, loaded = load_exported(out, fmt), load_model(model)
    for k, t in shapes:
        x = torch.randn(k, t, C, generator=torch.Generator().manual_seed(k * 100 + t))
        want = loaded.method.score(loaded.model, x, domain if domain in loaded.domains else None)
        got = fn(x)
        assert got.shape == (t,)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", [m for m in list_methods() if m != "como"])
def test_torchscript_export_equals_score_for_every_method(tmp_path: Path, name: str) -> None:
    model = _model(tmp_path, name)
    _check_export(model, "torchscript", str(tmp_path / "m.ts"), "A", [(2, 8), (3, 13)])
    _check_export(model, "torchscript", str(tmp_path / "u.ts"), None, [(1, 9)])


def test_como_exports_at_its_traced_length(tmp_path: Path) -> None:
    """CoMo's graph layer is built for one length: the export is exact at the traced T."""
    _check_export(_model(tmp_path, "como"), "exported-program", str(tmp_path / "c.pt2"), "A", [(2, 8)])


@pytest.mark.parametrize("fmt", ["exported-program", "onnx"])
def test_program_and_onnx_export_equal_score(tmp_path: Path, fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    model = _model(tmp_path, "nullang-mil")
    _check_export(model, fmt, str(tmp_path / f"m.{fmt}"), "B", [(2, 8), (3, 21)])
    _check_export(model, fmt, str(tmp_path / f"u.{fmt}"), "unseen-domain", [(1, 10)])


def test_export_rejects_unknown_format(tmp_path: Path) -> None:
    from omnivad.export import export_model

    with pytest.raises(ValueError, match="--format: expected one of"):
        export_model(_model(tmp_path, "mil"), "tflite", str(tmp_path / "x"))


def test_convert_public_bn_wvad_then_predict_and_export(tmp_path: Path) -> None:
    from omnivad.api import load_model
    from omnivad.cli import main
    from omnivad.methods.bn_wvad.interop import load_public_state_dict
    from tests.methods.test_bn_wvad import public_state_dict, spec_scores

    sd = public_state_dict(C)
    torch.save(sd, tmp_path / "xd_best.pkl")
    out = tmp_path / "model.pt"
    assert main(["convert", "--from", "bn-wvad", str(tmp_path / "xd_best.pkl"), "--out", str(out), "--domains", "XD"]) == 0
    loaded = load_model(str(out))
    assert loaded.payload["method"] == "bn-wvad" and loaded.domains == ["XD"]
    assert loaded.payload["config"]["bn_wvad"]["embed_dim"] == 512
    x = torch.randn(2, 9, C, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(torch.from_numpy(loaded.score(x.numpy(), "XD")), spec_scores(sd, x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.from_numpy(loaded.score(x.numpy())),
                               get_method("bn-wvad").score(load_public_state_dict(sd, ["XD"]), x, None))
    _check_export(str(out), "torchscript", str(tmp_path / "bn.ts"), "XD", [(2, 9), (1, 17)])
    bad = {**sd, "memory.Amemory.weight": torch.zeros(1)}
    torch.save(bad, tmp_path / "bad.pkl")
    assert main(["convert", "--from", "bn-wvad", str(tmp_path / "bad.pkl"), "--out", str(tmp_path / "b.pt")]) == 1


# ---------------------------------------------------------------------------------------------- API
def test_score_ranges_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in list_methods():
        low, high, meaning = get_method(name).score_range()
        assert low < high and meaning
        assert f"| `{name}` |" in readme, f"README score-range table lacks {name}"
    assert get_method("nullang-mil").score_range()[:2] == (-1.0, 3.0)


def test_import_omnivad_is_cheap() -> None:
    code = "import sys, omnivad; assert callable(omnivad.train.__call__); print('torch' in sys.modules)"
    cheap = "import sys, omnivad; print('torch' in sys.modules or 'ray' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "platform")}
    assert subprocess.run([sys.executable, "-c", cheap], env=env, capture_output=True, text=True).stdout.strip() == "False"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).returncode == 0


def test_readme_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from omnivad.corpus.synth import SynthConfig, synthesize

    block = re.search(r"<!-- api-example -->\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md: the API example block (<!-- api-example -->) is missing"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 8
    synthesize(str(tmp_path / "corpus"), SynthConfig(domains=2, videos_per_domain=8, test_videos_per_domain=6, dim=8, seed=2))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"6 videos; AUC [01]\.\d+", printed), printed
    assert (tmp_path / "run" / "model.pt").is_file() and len(list((tmp_path / "pred" / "snippets").glob("*.npy"))) == 6


@pytest.mark.parametrize("name", list_methods())
def test_aux_scores_hook(tmp_path: Path, name: str) -> None:
    from omnivad.api import load_model

    loaded = load_model(_model(tmp_path, name))
    aux = loaded.method.aux_scores(loaded.model, torch.randn(2, 7, C), "A")
    if name in ("mil", "null-mil", "nullang-mil"):
        assert list(aux) == ["ac"] and aux["ac"].shape == (7,) and aux["ac"].dtype == np.float32
        assert ((aux["ac"] >= 0) & (aux["ac"] <= 1)).all()
    else:
        assert aux == {}


def test_predict_raw_video_through_the_backbone(tmp_path: Path) -> None:
    """``predict --video``: the snippets the extractor would cut, through the backbone read from a local weights
    file, scored by the model: equal to scoring those features directly; errors name the missing piece."""
    from omnivad.api import load_model
    from omnivad.cli import main
    from omnivad.config import VideoConfig
    from omnivad.video.backbones import build_backbone
    from omnivad.video.io import write_video
    from omnivad.video.snippets import SnippetStream
    from omnivad.video.synth import moving_shapes

    net = build_backbone("r3d18", 0.125, random_weights=True, seed=4)
    weights = tmp_path / "r3d18 (narrow).pt"
    torch.save(net.state_dict(), weights)
    video = tmp_path / "cam 1 #night.mp4"  # odd characters in the name
    write_video(str(video), moving_shapes(40, size=(32, 48), seed=2), fps=25)
    dim = int(net.feature_dim)
    torch.manual_seed(0)
    cfg = config.load(overrides=["model.method=null-mil", *TINY])
    model_net = get_method("null-mil").build(cfg, ["A", "B"], dim)
    model = str(tmp_path / "model.pt")
    write_model(model, {"model": model_net.state_dict(), "method": "null-mil", "domains": ["A", "B"],
                        "feature_dim": dim, "selected": "final@0", "config": dump(cfg)})
    out = tmp_path / "pred"
    args = ["predict", "--model", model, "--video", str(video), "--out", str(out), "--backbone", "r3d18",
            "--backbone-width", "0.125", "--crops", "center", "--resize", "32", "--crop-size", "24", "--domain", "A"]
    assert main(args[:6] + args[6:]) == 1  # no --backbone-weights: refused with a message
    assert main(args + ["--backbone-weights", str(weights)]) == 0
    vcfg = VideoConfig(backbone="r3d18", width=0.125, random_weights=True, seed=4, crops="center", resize=32, crop_size=24)
    clips = [c for _, c in SnippetStream(str(video), vcfg)]
    assert len(clips) == 2  # floor(40 / 16)
    with torch.inference_mode():
        feats = torch.stack([net(torch.from_numpy(c).permute(0, 4, 1, 2, 3).float() / 255) for c in clips], dim=1)
    want = load_model(model).score(feats.numpy(), "A")
    got = np.load(out / "snippets" / "cam 1 #night.npy")
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.load(out / "frames" / "cam 1 #night.npy").shape == (32,)
    # weights that do not fit the backbone asked for (another width): refused, naming the file
    assert main(args + ["--backbone-weights", str(weights), "--backbone-width", "0.25"]) == 1
