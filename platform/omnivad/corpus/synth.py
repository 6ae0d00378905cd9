"""A synthetic multi-domain WVAD corpus with a planted abnormal conflict and scene discrepancy.

The generator writes an ordinary omnivad corpus (see :mod:`omnivad.corpus.format`), so every
method, protocol and report runs on it unchanged. It is small, fast (the default corpus takes well under
two seconds) and fully determined by its :class:`SynthConfig`: the same config gives a bitwise identical
corpus, another seed gives another one.

Generative model
----------------
Dimensions: ``C = dim`` features per snippet, ``T`` snippets per video drawn uniformly from
``[min_snippets, max_snippets]``, 16 frames per snippet (``n_frames = 16·T``).

Directions. One random orthonormal family (QR of a Gaussian matrix) gives

* ``n_events`` event prototypes ``e_j`` ("E0", "E1", ...), each of norm ``event_norm``
  (default 1.5 = 3 × the default per-dimension noise 0.5),
* ``n_activities`` shared "normal activity" prototypes ``a_k`` of norm ``activity_norm``,
* one scene vector ``s_d`` per domain of norm ``scene_shift`` (the *scene discrepancy*).

When ``C`` is smaller than the number of directions, the remainder are random unit vectors.

Snippets. Every video of domain ``d`` draws one activity ``k``. A background snippet is
``s_d + a_k + noise·ε`` with ``ε ~ N(0, I)``. An event snippet adds ``e_j`` to the background
(``event_mode="add"``) or replaces the activity, ``s_d + e_j + noise·ε`` (``event_mode="replace"``).
With ``crops > 1`` each crop is the snippet plus ``crop_noise·ε'``.

Planted event structure (fixed by ``n_events`` and the number of domains ``D``; not by the seed):

* *general abnormal* events: the first ``n_general`` (default ``max(1, n_events // 4)``); abnormal in every
  domain;
* *conflict* events: the next ``n_conflict`` (default ``n_events // 2``; none when ``D == 1``). Conflict event number ``i``
  (0-based among conflicts) is abnormal in domain ``i mod D``, and also in domain ``(i + 1) mod D``
  when ``i`` is odd and ``D > 2``. It is **normal** in all other domains;
* the remaining events never occur (kept for open-set experiments).

``A_d`` is the set of events abnormal in domain ``d``; ``N_d`` the conflict events normal in ``d``.

Videos. Per domain and split, ``round(abnormal_fraction · n)`` videos are abnormal (label 1). An
abnormal video contains one contiguous interval of ``L = round(u·T)`` snippets (``u ~ U[event_span]``, default ``[0.1, 0.4]``,
``L >= 1``) of one event drawn uniformly from ``A_d``; the frames of those snippets have ``gt = 1``, all
other frames ``gt = 0``; its category is the event name. A normal video (category "Normal", ``gt`` all
zero) of domain ``d`` contains, with probability ``conflict_strength``, the same kind of interval of an
event drawn from ``N_d`` (when ``N_d`` is non-empty). So at ``conflict_strength = 1`` every normal video
of a domain shows an event that some other domain calls abnormal: the abnormal conflict. The frame-level
``gt`` of train videos is stored too (a real corpus has it for test videos only).

Side signals (``side_signals=True``; drawn from their own random stream, so the features are unchanged):
``flow`` (T,), a motion intensity ``0.2 + 0.1·|ε|`` that rises by 1 inside every planted event interval
(abnormal or conflict: events move), and ``objects`` (T, ``object_classes``), per-class scores
``0.1·u`` (``u ~ U[0, 1]``) with class ``k mod W`` at 0.8 for activity ``k`` and, inside an event interval,
class ``(n_activities + j) mod W`` at 0.9 for event ``j``.

:func:`describe_truth` returns the structure and every planted interval; :func:`synthesize` saves it as
``synth_truth.json`` next to ``manifest.json``.
"""

from __future__ import annotations

import posixpath
import sys
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from omnivad import storage
from omnivad.corpus.names import MAX_NAME, NAME_RE, NAME_RULE
from omnivad.corpus.format import FRAMES_PER_SNIPPET, Corpus, CorpusWriter, Manifest, Video
from omnivad.errors import CorpusError

DEFAULT_DOMAIN_NAMES = ["campus", "traffic", "street", "indoor"]
TRUTH_FILE = "synth_truth.json"
SOURCE = "synthetic"


class SynthConfig(BaseModel):
    """Parameters of the synthetic corpus (see the module docstring for the generative model)."""

    model_config = ConfigDict(extra="forbid")

    domains: int = Field(default=4, ge=1, description="number of domains (ignored when domain_names is given)")
    domain_names: list[str] | None = Field(default=None, description="explicit domain names")
    videos_per_domain: int = Field(default=60, ge=1, description="training videos per domain")
    test_videos_per_domain: int = Field(default=30, ge=0, description="test videos per domain (0: no test split)")
    abnormal_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    dim: int = Field(default=64, ge=1, description="feature dimension C")
    crops: int = Field(default=1, ge=1)
    min_snippets: int = Field(default=24, ge=1)
    max_snippets: int = Field(default=64, ge=1)
    n_events: int = Field(default=8, ge=1, description="event prototypes E0..E{n-1}")
    n_activities: int = Field(default=4, ge=1, description="shared normal-activity prototypes")
    conflict_strength: float = Field(
        default=1.0, ge=0.0, le=1.0, description="probability that a normal video shows a conflict event"
    )
    noise: float = Field(default=0.5, ge=0.0, description="per-dimension Gaussian noise std")
    scene_shift: float = Field(default=1.0, ge=0.0, description="norm of each domain's scene vector")
    event_norm: float = Field(default=1.5, ge=0.0, description="norm of each event prototype")
    activity_norm: float = Field(default=1.0, ge=0.0, description="norm of each activity prototype")
    crop_noise: float = Field(default=0.05, ge=0.0, description="per-crop noise std (crops > 1)")
    n_general: int | None = Field(
        default=None, ge=0, description="events abnormal in every domain (default max(1, n_events // 4)): the shared share"
    )
    n_conflict: int | None = Field(
        default=None, ge=0, description="conflict events (default n_events // 2; none with one domain)"
    )
    event_mode: Literal["add", "replace"] = Field(
        default="add", description="an event snippet adds e_j to the background (s_d + a_k + e_j) or replaces the "
        "activity (s_d + e_j)"
    )
    event_span: tuple[float, float] = Field(
        default=(0.1, 0.4), description="event length as a share of the video, drawn uniformly in [low, high]"
    )
    side_signals: bool = Field(default=False, description="also write side_flow and side_objects per snippet")
    object_classes: int = Field(default=8, ge=1, description="width W of side_objects")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> SynthConfig:
        if self.domain_names is not None:
            names = self.domain_names
            if not names:
                raise ValueError("domain_names is empty")
            if "domains" in self.model_fields_set and self.domains != len(names):
                raise ValueError(f"domains={self.domains} but domain_names has {len(names)} names")
            if len(set(names)) != len(names):
                raise ValueError(f"domain_names has duplicates: {names}")
            for n in names:  # the one rule of every corpus writer (omnivad.corpus.names)
                if not isinstance(n, str) or not NAME_RE.match(n) or set(n) == {"."} or len(n) > MAX_NAME:
                    raise ValueError(f"domain name {n!r}: {NAME_RULE}, at most {MAX_NAME} characters")
            self.domains = len(names)
        lo, hi = self.event_span
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"event_span={self.event_span}: expected 0 < low <= high <= 1")
        n_general = max(1, self.n_events // 4) if self.n_general is None else self.n_general
        n_conflict = self.n_events // 2 if self.n_conflict is None else self.n_conflict
        if n_general + n_conflict > self.n_events:
            raise ValueError(f"n_general={n_general} + n_conflict={n_conflict} > n_events={self.n_events}")
        if n_general == 0 and (n_conflict == 0 or self.domains < 2):
            raise ValueError("no abnormal event: n_general=0 needs conflict events and at least two domains")
        if self.min_snippets > self.max_snippets:
            raise ValueError(f"min_snippets={self.min_snippets} > max_snippets={self.max_snippets}")
        return self

    @property
    def names(self) -> list[str]:
        if self.domain_names is not None:
            return list(self.domain_names)
        extra = [f"d{i}" for i in range(len(DEFAULT_DOMAIN_NAMES), self.domains)]
        return (DEFAULT_DOMAIN_NAMES + extra)[: self.domains]

    @property
    def event_names(self) -> list[str]:
        return [f"E{j}" for j in range(self.n_events)]


# --------------------------------------------------------------------------------------------------
# Structure


def _structure(cfg: SynthConfig) -> dict[str, Any]:
    names, events, n_dom = cfg.names, cfg.event_names, cfg.domains
    n_general = max(1, cfg.n_events // 4) if cfg.n_general is None else cfg.n_general
    n_conflict = cfg.n_events // 2 if cfg.n_conflict is None else cfg.n_conflict
    n_conflict = min(cfg.n_events - n_general, n_conflict) if n_dom >= 2 else 0
    general = events[:n_general]
    conflict = events[n_general : n_general + n_conflict]
    unused = events[n_general + n_conflict :]
    abnormal_in: dict[str, list[str]] = {e: list(names) for e in general}
    for i, e in enumerate(conflict):
        doms = {i % n_dom}
        if i % 2 == 1 and n_dom > 2:
            doms.add((i + 1) % n_dom)
        abnormal_in[e] = [names[k] for k in sorted(doms)]
    abnormal_events = {d: [e for e in general + conflict if d in abnormal_in[e]] for d in names}
    normal_conflicts = {d: [e for e in conflict if d not in abnormal_in[e]] for d in names}
    table = {
        e: {d: ("abnormal" if d in abnormal_in.get(e, []) else "normal" if e in conflict else "absent") for d in names}
        for e in events
    }
    return {
        "domains": names,
        "events": events,
        "general_abnormal": general,
        "conflict": conflict,
        "unused": unused,
        "abnormal_events": abnormal_events,
        "normal_conflict_events": normal_conflicts,
        "event_table": table,
    }


@dataclass
class _Plan:
    """Layout of one (domain, split): lengths, labels, planted intervals (snippet indices, end exclusive)."""

    domain: str
    split: str
    video_ids: list[str]
    lengths: np.ndarray  # (n,) int
    labels: np.ndarray  # (n,) int8
    events: list[str | None]  # planted event per video (None: background only)
    starts: np.ndarray  # (n,) int, -1 when no event
    ends: np.ndarray  # (n,) int, -1 when no event
    activities: np.ndarray  # (n,) int


def _rngs(cfg: SynthConfig) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    ss = np.random.SeedSequence([cfg.seed, 0x5EED])
    a, b, c = ss.spawn(3)
    return np.random.default_rng(a), np.random.default_rng(b), np.random.default_rng(c)


def _plans(cfg: SynthConfig, rng: np.random.Generator, structure: dict[str, Any]) -> list[_Plan]:
    plans: list[_Plan] = []
    splits = [("train", cfg.videos_per_domain), ("test", cfg.test_videos_per_domain)]
    for d in cfg.names:
        a_d = structure["abnormal_events"][d]
        n_d = structure["normal_conflict_events"][d]
        for split, n in splits:
            if n == 0:
                continue
            n_abn = int(round(cfg.abnormal_fraction * n))
            labels = np.zeros(n, dtype=np.int8)
            labels[rng.permutation(n)[:n_abn]] = 1
            lengths = rng.integers(cfg.min_snippets, cfg.max_snippets + 1, size=n)
            frac = rng.uniform(cfg.event_span[0], cfg.event_span[1], size=n)
            span = np.clip(np.round(frac * lengths).astype(np.int64), 1, lengths)
            starts = np.floor(rng.uniform(size=n) * (lengths - span + 1)).astype(np.int64)
            has_conflict = rng.uniform(size=n) < cfg.conflict_strength
            pick = rng.uniform(size=n)
            activities = rng.integers(0, cfg.n_activities, size=n)
            events: list[str | None] = []
            for i in range(n):
                if labels[i] == 1:
                    events.append(a_d[int(pick[i] * len(a_d))])
                elif n_d and has_conflict[i]:
                    events.append(n_d[int(pick[i] * len(n_d))])
                else:
                    events.append(None)
            has = np.array([e is not None for e in events])
            plans.append(
                _Plan(
                    domain=d,
                    split=split,
                    video_ids=[f"{d}_{split}_{i:04d}" for i in range(n)],
                    lengths=lengths,
                    labels=labels,
                    events=events,
                    starts=np.where(has, starts, -1),
                    ends=np.where(has, starts + span, -1),
                    activities=activities,
                )
            )
    return plans


def _directions(cfg: SynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event (n_events, C), activity (n_activities, C) and scene (D, C) vectors."""
    k = cfg.n_events + cfg.n_activities + cfg.domains
    c = cfg.dim
    g = rng.standard_normal((c, k))
    m = min(c, k)
    q, r = np.linalg.qr(g[:, :m])
    q = q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))  # unique QR, deterministic signs
    extra = g[:, m:]
    if extra.shape[1]:
        extra = extra / np.linalg.norm(extra, axis=0, keepdims=True)
    dirs = np.concatenate([q, extra], axis=1).T  # (k, C) unit rows
    ev = dirs[: cfg.n_events] * cfg.event_norm
    act = dirs[cfg.n_events : cfg.n_events + cfg.n_activities] * cfg.activity_norm
    scene = dirs[cfg.n_events + cfg.n_activities :] * cfg.scene_shift
    return ev, act, scene


def describe_truth(cfg: SynthConfig) -> dict[str, Any]:
    """The planted ground truth of the corpus ``cfg`` generates.

    Keys: ``domains``, ``events``, ``general_abnormal``, ``conflict``, ``unused``,
    ``abnormal_events`` (domain → A_d), ``normal_conflict_events`` (domain → conflict events planted as
    normal there), ``event_table`` (event → domain → "abnormal" / "normal" / "absent"), ``planted``
    (domain → split → list of ``{video_id, label, event, start, end}``, snippet indices, ``end``
    exclusive; frames ``16·start .. 16·end``), and ``config``.
    """
    structure = _structure(cfg)
    _, plan_rng, _ = _rngs(cfg)
    plans = _plans(cfg, plan_rng, structure)
    planted: dict[str, dict[str, list[dict[str, Any]]]] = {d: {} for d in cfg.names}
    for p in plans:
        planted[p.domain][p.split] = [
            {
                "video_id": p.video_ids[i],
                "label": int(p.labels[i]),
                "event": p.events[i],
                "start": int(p.starts[i]),
                "end": int(p.ends[i]),
            }
            for i in range(len(p.video_ids))
            if p.events[i] is not None
        ]
    return {
        "generator": "omnivad.corpus.synth",
        **structure,
        "frames_per_snippet": FRAMES_PER_SNIPPET,
        "planted": planted,
        "config": cfg.model_dump(),
    }


# --------------------------------------------------------------------------------------------------
# Generation


def generate(cfg: SynthConfig) -> list[Video]:
    """All videos of the corpus, in memory (train then test, domain by domain)."""
    structure = _structure(cfg)
    dir_rng, plan_rng, noise_rng = _rngs(cfg)
    side_rng = np.random.default_rng([cfg.seed, 0x51DE])  # its own stream: features do not depend on side_signals
    ev, act, scene = _directions(cfg, dir_rng)
    plans = _plans(cfg, plan_rng, structure)
    ev_index = {e: j for j, e in enumerate(cfg.event_names)}
    out: list[Video] = []
    for p in plans:
        d_idx = cfg.names.index(p.domain)
        total = int(p.lengths.sum())
        offsets = np.concatenate([[0], np.cumsum(p.lengths)])
        vid = np.repeat(np.arange(len(p.lengths)), p.lengths)  # video of each snippet
        pos = np.arange(total) - offsets[vid]  # position within its video
        x = cfg.noise * noise_rng.standard_normal((total, cfg.dim))
        x += scene[d_idx]
        in_event = (pos >= p.starts[vid]) & (pos < p.ends[vid])
        keep = ~in_event if cfg.event_mode == "replace" else np.ones(total, dtype=bool)
        x[keep] += act[p.activities[vid[keep]]]
        ev_of_video = np.array([ev_index[e] if e is not None else 0 for e in p.events], dtype=np.int64)
        x[in_event] += ev[ev_of_video[vid[in_event]]]
        if cfg.crops > 1:
            x = x[:, None, :] + cfg.crop_noise * noise_rng.standard_normal((total, cfg.crops, cfg.dim))
        else:
            x = x[:, None, :]
        x = x.astype(np.float32)
        snip_gt = (in_event & (p.labels[vid] == 1)).astype(np.uint8)
        side = _side_signals(cfg, side_rng, in_event, ev_of_video[vid], p.activities[vid]) if cfg.side_signals else {}
        for i, video_id in enumerate(p.video_ids):
            a, b = offsets[i], offsets[i + 1]
            label = int(p.labels[i])
            out.append(
                Video(
                    video_id=video_id,
                    domain=p.domain,
                    split=p.split,
                    label=label,
                    features=x[a:b],
                    categories=[p.events[i]] if label == 1 else ["Normal"],  # type: ignore[list-item]
                    gt=np.repeat(snip_gt[a:b], FRAMES_PER_SNIPPET),
                    source=SOURCE,
                    side={k: v[a:b] for k, v in side.items()},
                )
            )
    return out


def _side_signals(
    cfg: SynthConfig, rng: np.random.Generator, in_event: np.ndarray, event: np.ndarray, activity: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-snippet ``flow`` (S,) and ``objects`` (S, W) of all snippets of a plan (see the module docstring)."""
    n = len(in_event)
    flow = 0.2 + 0.1 * np.abs(rng.standard_normal(n)) + in_event.astype(np.float64)
    w = cfg.object_classes
    objects = 0.1 * rng.uniform(size=(n, w))
    objects[np.arange(n), activity % w] = 0.8
    rows = np.flatnonzero(in_event)
    objects[rows, (cfg.n_activities + event[rows]) % w] = 0.9
    return {"flow": flow.astype(np.float32), "objects": objects.astype(np.float32)}


def synthesize(out_uri: str, cfg: SynthConfig) -> Manifest:
    """Write the corpus ``cfg`` describes to ``out_uri`` (which must not hold a corpus yet)."""
    if Corpus.exists(out_uri):
        raise CorpusError(f"{out_uri}: a corpus already exists there; choose another output or delete it")
    videos = generate(cfg)
    fs, root = storage.filesystem(out_uri)
    truth_path = posixpath.join(root, TRUTH_FILE)
    try:
        with CorpusWriter(out_uri, feature_dim=cfg.dim, backbone=SOURCE, source_format="synth", new=True) as writer:
            for v in videos:
                writer.add(v)
            # The truth file goes first: the manifest (written by commit) stays the commit point.
            storage.write_json_atomic(fs, truth_path, describe_truth(cfg))
            manifest = writer.commit()
    except BaseException:
        if fs.exists(truth_path):
            fs.rm(truth_path)
        raise
    return manifest


def read_truth(uri: str) -> dict[str, Any]:
    """The ``synth_truth.json`` of a synthetic corpus."""
    fs, root = storage.filesystem(uri)
    path = posixpath.join(root, TRUTH_FILE)
    if not fs.exists(path):
        raise CorpusError(f"{uri}: no {TRUTH_FILE} (not a synthetic corpus)")
    return storage.read_json(fs, path)


#: The demo corpus: more videos per domain, clearer events and a milder scene shift than the
#: generator's defaults, so every head family learns in the demo's few hundred steps.
DEMO_SYNTH = {"videos_per_domain": 120, "event_norm": 2.0, "scene_shift": 0.5, "conflict_strength": 0.5}


def ensure_demo_corpus(uri: str, cfg: SynthConfig | None = None) -> str:
    """Make the synthetic demo corpus at ``uri`` unless a corpus is already there; return ``uri``."""
    if not Corpus.exists(uri):
        cfg = cfg or SynthConfig(**DEMO_SYNTH)
        print(
            f"omnivad: making synthetic demo corpus at {uri} "
            f"({cfg.domains} domains x {cfg.videos_per_domain}+{cfg.test_videos_per_domain} videos, "
            f"dim {cfg.dim}, seed {cfg.seed})",
            file=sys.stderr,
        )
        synthesize(uri, cfg)
    return uri
