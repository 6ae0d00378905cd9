"""Protocols as orchestrations of engine runs, one module per protocol behind :class:`Protocol`
(:mod:`omnivad.protocols.base`). A new protocol is one module with a registered subclass, imported here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from omnivad.protocols.base import Protocol, get_protocol, list_protocols, register
from omnivad.protocols import single, e1, e2, e3, e4, ubnormal_open  # noqa: E402,F401,I001  (register the built-in protocols)

if TYPE_CHECKING:
    from omnivad.corpus.benchmark import Benchmark, ProtocolSplit

__all__ = ["Protocol", "get_protocol", "list_protocols", "protocol_splits", "register"]


def protocol_splits(bench: Benchmark, protocol: str, fold: int = 0, target: str | None = None,
                    start: Literal["E1", "E2"] = "E1") -> ProtocolSplit:
    """Train/val/test/fine-tune ids of one run of ``protocol`` (case-insensitive) on ``fold`` of ``bench``
    (MDVAD §6.3, §6.4): what the protocol's :meth:`Protocol.splits` selects.

    - ``single``: train and val of ``target`` only; test every domain that has a test set.
    - ``E1``: train and val of every domain; test every domain (only ``target`` when given).
    - ``E2``: train and val of every domain but ``target``; test ``target``.
    - ``E3``: as E2 for pre-training; ``finetune`` = the target's low-shot subset.
    - ``E4``: pre-training as E1 (``start="E1"``) or E2 (``start="E2"``); ``finetune`` = the target's
      full fold training set.
    """
    return get_protocol(protocol).splits(bench, fold, target, start)
