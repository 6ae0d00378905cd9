"""What one training run needs besides the config: which videos, which heads, where to start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field


def group_by_location(
    domain: str, ids: Sequence[str], locations: Mapping[str, Mapping[str, tuple[str, str]]]
) -> dict[tuple[str, str], list[str]]:
    """``{(corpus domain, split): ids}``: a domain's videos grouped by where the corpus stores them (its own
    ``train`` split unless ``locations`` says otherwise)."""
    where = locations.get(domain, {})
    out: dict[tuple[str, str], list[str]] = {}
    for vid in ids:
        loc = tuple(where.get(vid, (domain, "train")))
        out.setdefault((loc[0], loc[1]), []).append(vid)
    return out


class RunSpec(BaseModel):
    """One engine run. Protocols build these; the engine never needs to know which protocol it is.

    train / val: ``{domain: [video_id, ...]}`` (training split of the corpus).
    head_domains: the model's heads, in order. A training domain missing from it is trained through the
    method's unseen-domain rule (MDVAD §6.5).
    locations: ``{domain: {video_id: (corpus domain, split)}}`` for train/val videos stored elsewhere than the
    domain's own ``train`` split (auxiliary sets merged by the benchmark, ``Benchmark.locations``).
    init_model: a ``model.pt`` URI to start from (E3/E4 fine-tuning), else a fresh model.
    test_domains: the domains this run's model is tested on; read during training only when
    ``train.selection`` is ``best-test`` (the papers' optimistic practice, never the default).
    """

    name: str
    corpus_uri: str
    train: dict[str, list[str]]
    val: dict[str, list[str]] = Field(default_factory=dict)
    locations: dict[str, dict[str, tuple[str, str]]] = Field(default_factory=dict)
    head_domains: list[str]
    steps: int
    seed: int = 0
    adapting: bool = False
    use_all: bool = False
    init_model: str | None = None
    test_domains: list[str] = Field(default_factory=list)  # used only by train.selection=best-test
