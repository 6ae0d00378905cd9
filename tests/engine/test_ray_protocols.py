"""Ray integration: every protocol end to end on a small corpus, and resume after a kill.

These start a local Ray (2 CPUs) and real Ray Train / Ray Data runs, so they are marked ``ray`` and
kept few: one fixture corpus, tiny models, a handful of steps.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from omnivad import config, storage
from omnivad.corpus.benchmark import build_benchmark
from omnivad.corpus.format import Corpus
from omnivad.corpus.synth import SynthConfig, synthesize
from omnivad.engine import checkpoint as ckpt
from omnivad.engine.spec import RunSpec
from omnivad.protocols import protocol_splits
from tests.faults import kill_at

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def corpus_uri(tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("ray") / "corpus")
    # two domains: the least that has held-in, held-out and a cross matrix (each domain costs a Ray Data
    # pipeline in every run)
    synthesize(uri, SynthConfig(domains=2, videos_per_domain=24, test_videos_per_domain=8, dim=16, seed=1))
    return uri


def _cfg(corpus_uri: str, out: str, *extra: str) -> config.Config:
    return config.load(
        overrides=[
            f"corpus.uri={corpus_uri}", f"storage.out={out}", "train.steps=4", "train.finetune_steps=2", "train.e4_steps=2",
            "train.eval_every=2", "train.checkpoint_every=2", "data.batch_per_class=6", "benchmark.folds=1",
            "train.lr=1e-3", *extra,
        ]
    )


@pytest.mark.slow
def test_every_protocol_runs_end_to_end(ray_local, corpus_uri, tmp_path):
    from omnivad.protocols.runner import run_protocol

    out = str(tmp_path / "out")
    domains = Corpus.open(corpus_uri).domains
    target = domains[0]
    results = {}
    for protocol in ["single", "E1", "E2", "E3", "E4"]:
        cfg = _cfg(corpus_uri, out, f"protocol.name={protocol}", f"protocol.targets=[{target}]", "model.method=null-mil")
        results[protocol] = run_protocol(cfg)

    for protocol, r in results.items():
        on_disk = json.loads(open(os.path.join(r["results_uri"], "results.json")).read())
        assert on_disk["protocol"] == protocol and on_disk["method"] == "null-mil" and on_disk["ac"] is True
        assert on_disk["config"]["protocol"]["name"] == protocol
        assert on_disk["corpus"]["fingerprint"] == Corpus.open(corpus_uri).fingerprint()
        tested = domains if protocol in ("single", "E1") else [target]
        assert sorted(on_disk["per_domain"]) == sorted(tested)
        for m in on_disk["per_domain"].values():
            assert 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["ap"] <= 1.0
        assert 0.0 <= on_disk["mean_auc"] <= 1.0
        md = open(os.path.join(r["results_uri"], "results.md")).read()
        assert "|" in md and ("Avg." in md or "Out Avg." in md)
    # the single-domain protocol fills the whole cross matrix with an Out Avg. row
    single = results["single"]
    assert set(single["matrix"]) == set(domains) and all(set(row) == set(domains) for row in single["matrix"].values())
    assert "Out Avg." in single["table"]
    # E4 reports both starting points; E3/E4 reused the E2/E1 pre-training runs instead of retraining
    assert {s["start"] for s in results["E4"]["starts"]} == {"E1", "E2"}
    e2_ckpt = results["E2"]["checkpoints"][0]
    e3_payload = ckpt.read_model(results["E3"]["checkpoints"][0])
    assert e3_payload["spec"]["init_model"] == e2_ckpt
    # the fine-tuned E3 model kept the source heads only (no head for the unseen target)
    assert target not in e3_payload["domains"]


def _fit(corpus_uri: str, out: str, *extra: str, step_hooks: list | None = None) -> str:
    from omnivad.engine.trainer import fit

    # max_failures=0: this is the driver-rerun path (test_a_killed_worker_recovers_in_the_same_job is Ray's own)
    cfg = _cfg(corpus_uri, out, "train.steps=6", "model.method=nullang-mil", "train.max_failures=0", *extra)
    corpus = Corpus.open(corpus_uri)
    split = protocol_splits(build_benchmark(corpus, cfg.benchmark, corpus.domains), "E1", 0)
    spec = RunSpec(name="run", corpus_uri=corpus_uri, train=split.train, val=split.val,
                   head_domains=corpus.domains, steps=6, seed=0)
    return fit(cfg, spec, step_hooks=step_hooks)


def _assert_timing_adds_up(history_json) -> None:
    """The run's phases (engine/timing.py) are all there and add up to its wall time within 10%."""
    import json

    from omnivad.engine.timing import PHASES

    timing = json.loads(history_json.read_text())[-1]["timing"]
    assert set(PHASES) <= set(timing), timing
    assert all(v >= -0.05 for v in timing.values()), timing
    assert abs(sum(v for k, v in timing.items() if k != "total") - timing["total"]) <= 0.1 * timing["total"], timing


def test_killed_run_resumes_to_the_same_result(ray_local, corpus_uri, tmp_path):
    from omnivad.engine.evaluate import evaluate_model

    straight = _fit(corpus_uri, str(tmp_path / "straight"))
    _assert_timing_adds_up(tmp_path / "straight" / "run" / "history.json")

    killed_out = str(tmp_path / "killed")
    with pytest.raises(Exception):
        _fit(corpus_uri, killed_out, step_hooks=kill_at(3))  # the worker process dies right after step 3
    fs, path = storage.filesystem(killed_out)
    assert not fs.exists(f"{path}/run/model.pt")  # no half-written result
    # killed by the hook after step 3: step 2's checkpoint was written, step 4's never
    saved = [p.name for p in (tmp_path / "killed").glob("run/ray/train/**/step-*")]
    assert "step-00000002" in saved and "step-00000004" not in saved, saved
    resumed = _fit(corpus_uri, killed_out)  # restarts from the step-2 checkpoint

    a, b = ckpt.read_model(straight), ckpt.read_model(resumed)
    assert a["selected"] == b["selected"]
    assert [h["step"] for h in b["history"]] == [2, 4, 6]
    for k, v in a["model"].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b["model"][k]), k
    corpus = Corpus.open(corpus_uri)
    # a corrupt model.pt: moved aside, the run counts as unfinished and is rebuilt from its latest checkpoint
    fs.pipe_file(f"{path}/run/model.pt", b"PK\x03\x04 truncated")
    rebuilt = _fit(corpus_uri, killed_out)
    assert fs.exists(f"{path}/run/model.pt.corrupt-0")
    c = ckpt.read_model(rebuilt)
    assert c["selected"] == a["selected"]
    assert all(torch.equal(v, c["model"][k]) for k, v in a["model"].items() if isinstance(v, torch.Tensor))
    ma = evaluate_model(straight, corpus, corpus.domains)
    mb = evaluate_model(resumed, corpus, corpus.domains)
    # a small test set is scored in this process; the Ray Data actor path gives the same outputs, bit for bit
    from omnivad.engine.evaluate import score_test_outputs

    here, actors = (score_test_outputs(straight, corpus, corpus.domains, in_process_bytes=b) for b in (1 << 30, 0))
    assert {d: sorted(v) for d, v in here.items()} == {d: sorted(v) for d, v in actors.items()}
    for d in here:
        for vid, out in here[d].items():
            assert set(out) == set(actors[d][vid]) and all(np.array_equal(out[k], actors[d][vid][k]) for k in out)
    assert ma["mean_auc"] == mb["mean_auc"]
    np.testing.assert_equal([ma["per_domain"][d]["auc"] for d in corpus.domains],
                            [mb["per_domain"][d]["auc"] for d in corpus.domains])


def _descendants_named(name: str) -> list[int]:
    """Pids of this test process's descendants (its own local Ray) whose command line contains ``name``."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
            pid = int(entry)
            chain = pid
            while chain > 1 and chain != me:
                chain = int(open(f"/proc/{chain}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if chain == me and name in cmd:
            found.append(pid)
    return found


def test_a_killed_worker_recovers_in_the_same_job(ray_local, corpus_uri, tmp_path):
    """train.max_failures: an external SIGKILL of the Ray Train worker mid-run; Ray Train restarts it from the
    latest checkpoint within the same fit() and the weights are bit-identical to an uninterrupted run."""
    import signal
    import threading
    import time

    from omnivad.engine.trainer import fit

    corpus = Corpus.open(corpus_uri)
    extra = ["train.steps=40", "train.eval_every=5", "train.checkpoint_every=5", "model.method=nullang-mil"]
    split = protocol_splits(build_benchmark(corpus, _cfg(corpus_uri, "x").benchmark, corpus.domains), "E1", 0)
    spec = RunSpec(name="run", corpus_uri=corpus_uri, train=split.train, val=split.val,
                   head_domains=corpus.domains, steps=40, seed=0)
    straight = fit(_cfg(corpus_uri, str(tmp_path / "straight"), *extra), spec)

    out = tmp_path / "killed"
    events: dict[str, float | int] = {}

    def killer() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "killed" not in events:
            if list(out.glob("run/ray/train/**/step-00000010")):
                pids = _descendants_named("RayTrainWorker")
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    events.update(killed=pids[0], at=time.monotonic())
            time.sleep(0.02)
        while time.monotonic() < deadline and "killed" in events:
            pids = [p for p in _descendants_named("RayTrainWorker") if p != events["killed"]]
            if pids:
                events.update(restarted=pids[0], restart_s=time.monotonic() - events["at"])
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    recovered = fit(_cfg(corpus_uri, str(out), *extra, "train.max_failures=3"), spec)
    done = time.monotonic()
    watcher.join(timeout=5)
    assert "killed" in events, "the worker was never killed (the run finished before step 10's checkpoint was seen)"
    assert "restarted" in events and events["restarted"] != events["killed"]
    print(f"worker {events['killed']} killed after step 10; a new worker {events['restarted']} started "
          f"{events['restart_s']:.1f} s later; the run finished {done - events['at']:.1f} s after the kill")
    a, b = ckpt.read_model(straight), ckpt.read_model(recovered)
    assert a["selected"] == b["selected"]
    assert [h["step"] for h in a["history"]] == [h["step"] for h in b["history"]]
    for k, v in a["model"].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b["model"][k]), k


def test_a_merged_domain_trains_on_exactly_the_builders_videos(ray_local, tmp_path):
    """benchmark.merge: the Ray training dataset of the merged domain holds the builder's counts, auxiliary
    videos (read from the auxiliary domain's train and test splits) included."""
    from omnivad.data.ray_datasets import collect_pools
    from omnivad.engine.trainer import train_datasets
    from omnivad.protocols.runner import plan, selected_domains

    uri = str(tmp_path / "corpus")
    synthesize(uri, SynthConfig(domains=3, videos_per_domain=12, test_videos_per_domain=6, dim=4, seed=2))
    corpus = Corpus.open(uri)
    own, aux = corpus.domains[0], corpus.domains[2]
    cfg = _cfg(uri, str(tmp_path / "out"), f"benchmark.merge={{{own}: [{aux}]}}", "benchmark.aux_policy=pool",
               "benchmark.val_fraction=0.2")
    domains = selected_domains(cfg, corpus)
    bench = build_benchmark(corpus, cfg.benchmark, domains)
    spec = plan(cfg, corpus, bench, domains)[0].stages[0]
    assert spec.locations[own]
    for d, ds in train_datasets(cfg, spec).items():
        d = d.removeprefix("train_")
        pools = collect_pools(ds, d)
        want = bench.fold(0).train[d]
        assert sorted(pools[(d, 0)].ids + pools[(d, 1)].ids) == sorted(want), d
        assert len(pools[(d, 1)].ids) == sum(bench.info(d, v).label for v in want)


def test_ray_data_reads_are_verified_against_the_manifest(ray_local, tmp_path):
    """Training and scoring read parts through Ray Data; each part is hashed while read, so a part corrupted after
    the corpus was opened (past every driver-side check) fails the pipeline naming the part and the corpus, and
    ``corpus.verify=false`` opts out (Ray Data's own read_parquet)."""
    import shutil

    from omnivad.data.ray_datasets import domain_dataset

    src = str(tmp_path / "c")
    synthesize(src, SynthConfig(domains=1, videos_per_domain=6, test_videos_per_domain=2, dim=4, seed=2))
    corpus = Corpus.open(src)
    want = {v.video_id: v.features for v in corpus.videos("campus", "train")}
    rows = domain_dataset(corpus, "campus", "train", segments=4).take_all()
    assert sorted(r["video_id"] for r in rows) == sorted(want) and all(r["x"].shape == (4, 1, 4) for r in rows)
    good = str(tmp_path / "good.parquet")
    rel = corpus.parts("campus", "train")[0]["path"]
    path = os.path.join(src, rel)
    shutil.copyfile(path, good)
    data = bytearray(open(path, "rb").read())
    data[-200] ^= 0xFF  # in the footer's neighbourhood: parquet may or may not notice, the hash does
    open(path, "wb").write(bytes(data))
    with pytest.raises(Exception, match=rf"{src}: part {rel} is corrupt: sha256"):
        domain_dataset(corpus, "campus", "train", segments=4).take_all()
    # verify=false: no hash check on the same corrupt part (Parquet itself may still notice the damage)
    unverified = Corpus.open(src, verify=False)
    try:
        domain_dataset(unverified, "campus", "train", segments=4).take_all()
    except Exception as exc:  # noqa: BLE001 - Parquet's own error, whatever it is, but never the hash check
        assert "is corrupt: sha256" not in str(exc)
    shutil.copyfile(good, path)
    assert len(domain_dataset(unverified, "campus", "train", segments=4).take_all()) == len(want)
