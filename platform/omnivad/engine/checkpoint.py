"""Checkpoint files: plain dicts of tensors and numbers, always loaded with ``weights_only=True``."""

from __future__ import annotations

import io
import os
import posixpath
from typing import Any

import torch

from omnivad import storage
from omnivad.errors import CheckpointError

STATE_FILE = "state.pt"


def save_state(state: dict[str, Any], directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, STATE_FILE)
    torch.save(state, path)
    return path


def load_state(directory_or_file: str) -> dict[str, Any]:
    """Load a checkpoint dict from a local path or URI (a directory holding ``state.pt`` or a file)."""
    fs, path = storage.filesystem(directory_or_file)
    if fs.isdir(path):
        path = posixpath.join(path, STATE_FILE)
    data = storage.read_bytes(fs, path)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, bad pickle, a non-tensor object: all "unreadable"
        raise CheckpointError(
            f"{storage.uri_of(fs, path)}: cannot read checkpoint ({len(data)} bytes): {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{storage.uri_of(fs, path)}: expected a dict checkpoint, got {type(state).__name__}")
    return state


def write_model(uri: str, payload: dict[str, Any]) -> None:
    """Write a selected model (``model.pt``) to a local path or URI, atomically."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    fs, path = storage.filesystem(uri)
    storage.write_bytes_atomic(fs, path, buf.getvalue())


MODEL_KEYS = ("model", "method", "domains", "feature_dim", "selected", "config")


def read_model(uri: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A selected ``model.pt``; :class:`CheckpointError` naming the file when it cannot be read or lacks one
    of the ``required`` keys (:data:`MODEL_KEYS` for the engine's models)."""
    payload = load_state(uri)
    missing = [k for k in required if k not in payload]
    if missing:
        raise CheckpointError(f"{uri}: not a complete model file (missing {', '.join(missing)})")
    return payload


def set_aside(uri: str) -> str:
    """Move an unreadable file out of the way (``<name>.corrupt-<n>``) so a rerun treats its run as
    unfinished; returns where it went."""
    fs, path = storage.filesystem(uri)
    n = 0
    while fs.exists(f"{path}.corrupt-{n}"):
        n += 1
    dest = f"{path}.corrupt-{n}"
    fs.mv(path, dest)
    return storage.uri_of(fs, dest)
