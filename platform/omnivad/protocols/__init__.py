"""Protocols as orchestrations of engine runs, one module per protocol behind :class:`Protocol`
(:mod:`omnivad.protocols.base`). A new protocol is one module with a registered subclass, imported here."""

from omnivad.protocols.base import Protocol, get_protocol, list_protocols, register
from omnivad.protocols import single, e1, e2, e3, e4  # noqa: E402,F401  (register the built-in protocols)

__all__ = ["Protocol", "get_protocol", "list_protocols", "register"]
