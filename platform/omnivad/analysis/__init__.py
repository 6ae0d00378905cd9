"""Analyses of corpora and finished runs (``omnivad analyze``), the MDVAD paper's §2 / appendix D studies.

- :mod:`.discrepancy`: scene discrepancy between domains, EMD of their I3D features (MDVAD Table 3).
- :mod:`.conflicts`: relative FPR/FNR of cross-domain models from a ``single`` run's scores (Table A2, Eq. 8).
- :mod:`.categories`: per-category AUC/AP of a run's test scores (BN-WVAD Table 9, MDVAD Fig. A4, CoMo Fig. 6).
"""

from __future__ import annotations

from omnivad.errors import OmnivadError


class AnalysisError(OmnivadError):
    """An analysis cannot run on its input (wrong kind of run, missing file or field); the message names it."""


__all__ = ["AnalysisError"]
