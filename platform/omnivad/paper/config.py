"""The ``ubnormal`` config section: the UBnormal open-set protocol (``protocol.name=ubnormal-open``, MDVAD §6.3,
Tables 9 and A5), registered here (imports only :mod:`omnivad.sections`, so :mod:`omnivad.config` can load it)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from omnivad.sections import Section, register_section


class UBnormalConfig(Section):
    """How ``ubnormal-open`` re-splits the UBnormal domain (datasets/ubnormal.md, "open question")."""

    domain: str = Field(default="UBN", description="the corpus domain holding UBnormal (a seventh training source)")
    resplit: Literal["disjoint", "fill"] = Field(
        default="disjoint",
        description="disjoint (the spec's reading: test anomaly types unseen in training): the training pool is "
        "UBnormal's train + validation splits, the test split is unchanged, and the per-fold volumes are the "
        "benchmark's capped at that pool (real lists: 210 N / 120 A); fill (the paper's 210 N / 176 A literally): "
        "the abnormal shortfall is drawn from the test split's abnormal videos, which then leave the test set "
        "(test types become seen in training)",
    )
    reference: bool = Field(default=True, description="also train the single-source reference (UBnormal alone, "
                            "Table 9's 'UBN only' row) with the run's method")


register_section("ubnormal", UBnormalConfig)
