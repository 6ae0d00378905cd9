"""MMIL's config section ``mmil`` (registered by :mod:`omnivad.methods.mmil`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from omnivad.sections import Section


class MMILConfig(Section):
    """Sultani MIL ranking baseline (``model.method=mmil``; Sultani, Chen, Shah, CVPR 2018, Eqs. 6–7)."""

    hidden: tuple[int, int] = Field(default=(512, 32), description="FC widths: C → 512 → 32 → 1 (sigmoid)")
    dropout: float = Field(default=0.6, ge=0.0, lt=1.0, description="dropout after each hidden FC layer")
    rank_margin: float = Field(default=1.0, ge=0.0, description="ranking hinge margin: max(0, m − max s_a + max s_n)")
    lambda_smooth: float = Field(default=8e-5, ge=0.0, description="λ1: temporal smoothness Σ(s_t − s_t+1)² of abnormal bags")
    lambda_sparse: float = Field(default=8e-5, ge=0.0, description="λ2: sparsity Σ s_t of abnormal bags")
    pairing: Literal["paired", "all-pairs"] = Field(
        default="paired",
        description="hinge pairs: i-th abnormal with i-th normal video of the same domain (default), or every abnormal×normal pair of the domain",
    )


ALIASES: dict[str, str] = {"mmil.margin": "mmil.rank_margin"}
