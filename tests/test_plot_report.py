"""``omnivad plot RUN_DIR``: figures from score files, results.json and history.json; the HTML report rendered by
headless Chromium (the page a person opens: every image loads, the results table is there, the page not blank)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from omnivad.cli import main
from omnivad.corpus.format import Corpus
from omnivad.corpus.synth import SynthConfig, synthesize

RESULTS_MD = """### single

| Trained on | campus | traffic | Out Avg. |
|---|---|---|---|
| campus | 90.00 | 70.00 | 70.00 |
| traffic | 65.00 | 88.00 | 65.00 |

Frame-level ROC-AUC (%), n=1 fold (no std).
"""


def _scores_for(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = int(np.ceil(len(gt) / 16))
    snip = np.array([gt[16 * i:16 * (i + 1)].mean() for i in range(t)])
    return (0.35 * snip + 0.65 * rng.random(t)).astype(np.float32)


def write_scores(run_dir: Path, corpus: Corpus, jobs: list[str]) -> int:
    """The other half's layout: scores/<job>/<domain>/<video>.npy (+ .ac.npy) and scores.csv."""
    rng = np.random.default_rng(0)
    rows = []
    for job in jobs:
        for d in corpus.manifest.domains:
            for v in corpus.videos(d, "test"):
                rel = Path("scores") / job / d
                (run_dir / rel).mkdir(parents=True, exist_ok=True)
                np.save(run_dir / rel / f"{v.video_id}.npy", _scores_for(v.gt, rng))
                ac = ""
                if job == jobs[0]:
                    ac = str(rel / f"{v.video_id}.ac.npy")
                    np.save(run_dir / ac, rng.random(v.n_snippets).astype(np.float32))
                rows.append({"job": job, "fold": 0, "key": f"0|{job}", "domain": d, "video_id": v.video_id,
                             "n_snippets": v.n_snippets, "label": v.label,
                             "scores": str(rel / f"{v.video_id}.npy"), "ac": ac})
    with (run_dir / "scores.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return len(rows)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("plot")
    corpus_uri = str(tmp / "corpus")
    synthesize(corpus_uri, SynthConfig(domain_names=["campus", "traffic"], videos_per_domain=6, test_videos_per_domain=6,
                                       dim=8, min_snippets=8, max_snippets=16, seed=0))
    run = tmp / "out" / "single-mil-20260101-000000"
    model_dir = tmp / "out" / "runs" / "abc" / "mil" / "fold0" / "single" / "campus"
    model_dir.mkdir(parents=True)
    (model_dir / "history.json").write_text(json.dumps(
        [{"step": s, "loss": 1.0 / s, "val_auc": 0.5 + s / 100} for s in (10, 20, 30)]))
    run.mkdir(parents=True)
    results = {"protocol": "single", "method": "mil", "tag": "mil", "selection": "best-val", "config_hash": "abc",
               "per_domain": {"campus": {"auc": 0.9, "ap": 0.5}, "traffic": {"auc": 0.88, "ap": 0.4}},
               "mean_auc": 0.89, "mean_auc_std": None, "n": 1, "align": "scores",
               "matrix": {"campus": {"campus": 0.9, "traffic": 0.7}, "traffic": {"campus": 0.65, "traffic": 0.88}},
               "checkpoints": [str(model_dir / "model.pt")], "corpus": {"uri": corpus_uri},
               "config": {"train": {"steps": 30, "lr": 1e-3}}}
    (run / "results.json").write_text(json.dumps(results))
    (run / "results.md").write_text(RESULTS_MD)
    write_scores(run, Corpus.open(corpus_uri), ["single/campus", "single/traffic"])
    return run


def test_plot_writes_every_figure_and_the_page(run_dir: Path) -> None:
    assert main(["plot", str(run_dir), "--max-videos", "3"]) == 0
    names = sorted(p.name for p in (run_dir / "figures").iterdir())
    for name in ("roc_campus.png", "pr_campus.png", "roc_traffic.png", "pr_traffic.png", "cross_domain.png"):
        assert name in names
    assert len([n for n in names if n.startswith("timeline_")]) == 3
    assert len([n for n in names if n.startswith("training_")]) == 1
    page = (run_dir / "report" / "index.html").read_text()
    assert "<table>" in page and "Out Avg." in page
    for name in names:
        assert f'src="../figures/{name}"' in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained


def test_plot_names_a_bad_score_file(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "run"
    shutil.copytree(run_dir, bad)
    first = next(csv.DictReader((bad / "scores.csv").open()))
    (bad / first["scores"]).write_bytes(b"not numpy")
    assert main(["plot", str(bad)]) == 1
    assert first["scores"].split("/")[-1] in capsys.readouterr().err


def test_plot_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path)]) == 1
    assert "neither results.json nor table10.json" in capsys.readouterr().err


CHECK_IMAGES = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const out = document.createElement('pre');
  out.id = 'omnivad-check';
  out.textContent = 'IMAGES ' + imgs.length + ' BROKEN [' + bad.join(',') + '] TABLES ' +
      document.querySelectorAll('table').length;
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(_chromium() is None and not os.environ.get("CI"), reason="chromium not installed (required in CI)")
def test_report_renders_in_chromium(run_dir: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    assert chromium is not None, "CI: chromium must be installed (.ci/run installs it)"
    assert main(["plot", str(run_dir), "--max-videos", "3"]) == 0
    page = run_dir / "report" / "index.html"
    shot = tmp_path / "report.png"
    _headless(chromium, tmp_path / "p1", f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri())
    assert shot.is_file(), "chromium wrote no screenshot"
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape[0] >= 1000 and pixels.std() > 5.0, "the screenshot is blank"
    assert (pixels < 128).mean() > 0.005, "almost nothing dark on the page"
    probe = page.with_name("check.html")
    probe.write_text(page.read_text().replace("</body>", CHECK_IMAGES + "</body>"))
    dom = _headless(chromium, tmp_path / "p2", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()).stdout
    n_imgs = page.read_text().count("<img ")
    assert f"IMAGES {n_imgs} BROKEN [] TABLES 1" in dom, dom[-2000:]
    if os.environ.get("OMNIVAD_REPORT_PNG"):
        shutil.copy(shot, os.environ["OMNIVAD_REPORT_PNG"])


def test_plot_comparison_bar_chart(tmp_path: Path) -> None:
    run = tmp_path / "E1-compare-20260101-000000"
    run.mkdir()
    rows = [{"entry": e, "per_domain": {"campus": {"auc": a}, "street": {"auc": a - 0.1}}, "mean_auc": a - 0.05,
             "best_test": False} for e, a in (("mil", 0.8), ("bn-wvad", 0.85))]
    (run / "table10.json").write_text(json.dumps({"protocol": "E1", "rows": rows}))
    (run / "table10.md").write_text("| Method | campus | street |\n|---|---|---|\n| MIL | 80.00 | 70.00 |\n")
    assert main(["plot", str(run)]) == 0
    from PIL import Image

    assert Image.open(run / "figures" / "table10.png").size[0] > 300
    page = (run / "report" / "index.html").read_text()
    assert 'src="../figures/table10.png"' in page and "<td>MIL</td>" in page


def test_plot_uvad_thresholds_per_module(tmp_path: Path) -> None:
    """A real (in-process) UVAD run: ``omnivad plot`` draws its T_k per module and the page shows it."""
    from omnivad import config
    from omnivad.uvad.runner import run_uvad
    from tests.uvad.test_interleave import unlabelled_corpus

    corpus = unlabelled_corpus(str(tmp_path / "corpus"), videos=6, test_videos=4, seed=5)
    cfg = config.load(overrides=[f"corpus.uri={corpus}", f"storage.out={tmp_path / 'out'}", "uvad.executor=local",
                                 "uvad.loops=1", "uvad.max_modules=2", "uvad.ws_iters=5", "uvad.ws_batch=2",
                                 "uvad.occ_hidden=8"])
    res = run_uvad(cfg)
    mods = res["per_domain"]["campus"]["modules"]
    assert [m["module"] for m in mods][:1] == [1] and mods[0]["T"] == res["per_domain"]["campus"]["t1"]
    run = Path(res["run"])
    assert main(["plot", str(run)]) == 0
    from PIL import Image

    assert Image.open(run / "figures" / "uvad_thresholds.png").size[0] > 300
    assert 'src="../figures/uvad_thresholds.png"' in (run / "report" / "index.html").read_text()
