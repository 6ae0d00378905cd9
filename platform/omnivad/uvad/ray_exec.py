"""The Ray executor: each model's training in a loop is a Ray Train run, scoring is a Ray Data pass.

Data exchange goes through datasets under ``<run>/<domain>/data/``: the soft labels (wOCC training
set: object features + w) and the hard labels (WS training set: snippet features + l + â) are written
as Parquet per loop and read back by the trainers as Ray Datasets; the objects and videos to score are
Parquet datasets mapped with ``map_batches``. Only the pooled score vectors come back to the driver
(they are what Eq. 3 ranks and Eq. 8 intersects).

Workers: ``scaling.workers`` DDP workers (gloo on CPU, NCCL with ``scaling.use_gpu``). wOCC data is
split across workers; every WS worker reads the whole labelled pool and draws its own bags (seeded by
rank), so a step averages ``workers × ws_batch`` bag pairs.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from omnivad import storage
from omnivad.config import Config, UVADConfig
from omnivad.engine import harness
from omnivad.uvad.data import Objects, SnippetSet
from omnivad.uvad.interleave import DomainData, new_occ, new_ws


def _write_parquet(uri: str, columns: dict[str, Any]) -> str:
    fs, path = storage.filesystem(uri)
    table = pa.table(columns)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    storage.write_bytes_atomic(fs, path, sink.getvalue())
    return uri


def _flat(x: np.ndarray) -> pa.Array:
    x = np.ascontiguousarray(x, dtype=np.float32)
    per = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    offsets = np.arange(0, x.shape[0] * per + 1, per, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(x.ravel()))


def _read_dataset(uri: str) -> Any:
    import ray.data

    fs, path = storage.filesystem(uri)
    return ray.data.read_parquet(path, filesystem=storage.arrow_filesystem(fs))


def _rows_to_array(batch: dict[str, np.ndarray], shape: list[int]) -> np.ndarray:
    col = batch["x"]
    arr = np.stack(col) if col.dtype == object else np.asarray(col)
    return arr.astype(np.float32).reshape(-1, *shape)


def _state_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _state_from(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def _shard_arrays(name: str, shape: list[int], extra: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    import ray.train

    xs, cols = [], {c: [] for c in extra}
    for batch in ray.train.get_dataset_shard(name).iter_batches(batch_size=4096, batch_format="numpy"):
        xs.append(_rows_to_array(batch, shape))
        for c in extra:
            cols[c].append(np.asarray(batch[c]))
    x = np.concatenate(xs) if xs else np.zeros((0, *shape), np.float32)
    return x, {c: (np.concatenate(v) if v else np.zeros(0)) for c, v in cols.items()}


def _report(state: dict, metrics: dict[str, Any]) -> None:
    """Every worker reports; rank 0's state is the run's checkpoint."""
    import ray.train

    harness.report(metrics, state if ray.train.get_context().get_world_rank() == 0 else None)


def occ_train_loop(config: dict[str, Any]) -> None:
    """Ray Train worker: Eq. 2 epochs over this worker's shard of the soft-label dataset."""
    import ray.train
    import ray.train.torch

    from omnivad.uvad.train import ObjectLoss, occ_epochs

    cfg = UVADConfig.model_validate(config["uvad"])
    rank = ray.train.get_context().get_world_rank()
    x, cols = _shard_arrays("train", config["shape"], ["w"])
    model, opt = new_occ(cfg, config["dim"], _state_from(config["state"]), 0)
    device = ray.train.torch.get_device()
    wrapped = harness.prepare(ObjectLoss(model).to(device), find_unused_parameters=False)
    if cfg.occ_epochs and len(x) == 0:
        raise ValueError("uvad: a Ray Train worker got an empty wOCC shard; use fewer scaling.workers")
    losses = occ_epochs(wrapped, opt, x, cols["w"], cfg, config["seed"] + rank, steps=config["steps"], device=device)
    inner = _unwrap(wrapped).inner
    _report({"model": {k: v.cpu() for k, v in inner.state_dict().items()}, "opt": opt.state_dict()},
            {"loss_first": losses[0], "loss_last": losses[-1], "losses": losses})


def ws_train_loop(config: dict[str, Any]) -> None:
    """Ray Train worker: one WS "epoch" on bags drawn (seeded by rank) from the hard-label dataset."""
    import ray.train
    import ray.train.torch

    from omnivad.uvad.train import ws_iterations

    cfg = UVADConfig.model_validate(config["uvad"])
    rank = ray.train.get_context().get_world_rank()
    x, cols = _shard_arrays("train", config["shape"], ["idx", "label", "ahat"])
    order = np.argsort(cols["idx"])
    model = new_ws(cfg, config["dim"], _state_from(config["state"]), 0)
    device = ray.train.torch.get_device()
    wrapped = harness.prepare(model.to(device), find_unused_parameters=False)
    losses = ws_iterations(wrapped, cfg.ws, x[order], cols["label"][order], cols["ahat"][order], cfg,
                           config["seed"] + 7919 * rank, device=device)
    _report({"model": {k: v.cpu() for k, v in _unwrap(wrapped).state_dict().items()}},
            {"loss_last": losses[-1], "losses": losses})


def _score_occ_batch(batch: dict[str, np.ndarray], uvad: dict[str, Any], dim: int, state: bytes,
                     shape: list[int]) -> dict[str, np.ndarray]:
    """Ray Data task: a_i of a batch of objects (the model is small: rebuilt per batch, no actor pool)."""
    from omnivad.uvad.train import score_objects

    model, _ = new_occ(UVADConfig.model_validate(uvad), dim, _state_from(state), 0)
    return {"idx": np.asarray(batch["idx"]), "score": score_objects(model, _rows_to_array(batch, shape))}


def _score_ws_batch(batch: dict[str, np.ndarray], uvad: dict[str, Any], dim: int, state: bytes) -> dict[str, np.ndarray]:
    """Ray Data task: s_j of every snippet of a batch of videos."""
    from omnivad.uvad.train import score_videos

    model = new_ws(UVADConfig.model_validate(uvad), dim, _state_from(state), 0)
    xs = [np.asarray(x, np.float32).reshape(-1, dim) for x in batch["x"]]
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in xs])])
    scores = score_videos(model, np.concatenate(xs), offsets)
    return {"video": np.asarray(batch["video"]),
            "score": np.array([scores[a:b] for a, b in zip(offsets[:-1], offsets[1:])] + [None], dtype=object)[:-1]}


class RayExecutor:
    """Ray Train for training, Ray Data for scoring; datasets and Ray Train runs live under the run dir."""

    def __init__(self, cfg: Config, run_uri: str) -> None:
        self.cfg = cfg
        self.u = cfg.uvad
        self.run = run_uri
        self._cache: dict[tuple[str, str], str] = {}

    # -- helpers
    def _dir(self, dd: DomainData, *parts: str) -> str:
        return storage.join(self.run, dd.domain, "data", *parts)

    def _fit(self, dd: DomainData, loop: Any, name: str, config: dict[str, Any], dataset: Any, split: bool) -> dict:
        result = harness.launch(loop, {"uvad": self.u.model_dump(mode="json"), **config}, self.cfg,
                                storage.join(self.run, dd.domain, "ray"), name=name, datasets={"train": dataset},
                                split_datasets=split, keep_checkpoints=None)
        return {"state": harness.final_state(result, f"uvad {dd.domain} {name}"), "metrics": result.metrics}

    # -- Executor protocol
    def train_occ(self, dd, state, w, init_seed, seed, tag):
        if state is None:
            model, opt = new_occ(self.u, dd.occ_dim, None, init_seed, dd.objects.x)
            state = {"model": model.state_dict(), "opt": opt.state_dict()}
        x = dd.objects.x
        uri = _write_parquet(self._dir(dd, tag, "soft_labels.parquet"),
                             {"idx": np.arange(len(x)), "x": _flat(x), "w": np.asarray(w, np.float32)})
        workers = self.cfg.scaling.workers
        steps = max(1, -(-len(x) // (self.u.occ_batch * workers)))
        out = self._fit(dd, occ_train_loop, f"{tag}-occ",
                        {"state": _state_bytes(state), "shape": list(x.shape[1:]), "dim": dd.occ_dim,
                         "seed": seed, "steps": steps}, _read_dataset(uri), split=True)
        return out["state"], list(out["metrics"]["losses"])

    def score_occ(self, dd, state, objects: Objects, tag):
        name = "objects_train.parquet" if objects is dd.objects else "objects_test.parquet"
        key = (dd.domain, name)
        if key not in self._cache:
            self._cache[key] = _write_parquet(self._dir(dd, name),
                                              {"idx": np.arange(len(objects.score_x)), "x": _flat(objects.score_x)})
        ds = _read_dataset(self._cache[key]).map_batches(
            _score_occ_batch, fn_kwargs={"uvad": self.u.model_dump(mode="json"), "dim": dd.occ_dim,
                                         "state": _state_bytes(state), "shape": list(objects.score_x.shape[1:])},
            batch_format="numpy", batch_size=4096)
        rows = ds.to_pandas()
        out = np.zeros(len(objects.score_x))
        out[rows["idx"].to_numpy()] = rows["score"].to_numpy()
        return out

    def train_ws(self, dd, state, labels, ahat, init_seed, seed, tag):
        if state is None:
            state = {"model": new_ws(self.u, dd.ws_dim, None, init_seed).state_dict()}
        x = dd.train.x
        uri = _write_parquet(self._dir(dd, tag, "hard_labels.parquet"),
                             {"idx": np.arange(len(x)), "x": _flat(x), "label": np.asarray(labels, np.int8),
                              "ahat": np.asarray(ahat, np.float64)})
        out = self._fit(dd, ws_train_loop, f"{tag}-ws",
                        {"state": _state_bytes(state), "shape": list(x.shape[1:]), "dim": dd.ws_dim, "seed": seed},
                        _read_dataset(uri), split=False)
        return out["state"], list(out["metrics"]["losses"])

    def score_ws(self, dd, state, snippets: SnippetSet, tag):
        name = "videos_train.parquet" if snippets is dd.train else "videos_test.parquet"
        key = (dd.domain, name)
        if key not in self._cache:
            vids = [snippets.x[a:b] for a, b in zip(snippets.offsets[:-1], snippets.offsets[1:])]
            col = pa.array([v.ravel() for v in vids], type=pa.list_(pa.float32()))
            self._cache[key] = _write_parquet(self._dir(dd, name), {"video": np.arange(len(vids)), "x": col})
        ds = _read_dataset(self._cache[key]).map_batches(
            _score_ws_batch, fn_kwargs={"uvad": self.u.model_dump(mode="json"), "dim": dd.ws_dim,
                                        "state": _state_bytes(state)},
            batch_format="numpy", batch_size=64)
        rows = ds.to_pandas()
        out = np.zeros(snippets.n)
        for v, s in zip(rows["video"].to_numpy(), rows["score"]):
            a, b = snippets.offsets[int(v)], snippets.offsets[int(v) + 1]
            out[a:b] = np.asarray(s, np.float64)
        return out
