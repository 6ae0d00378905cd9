"""Checkpoint files: plain dicts of tensors and numbers, always loaded with ``weights_only=True``."""

from __future__ import annotations

import io
import os
import posixpath
from typing import Any

import torch

from omnivad import storage

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
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def write_model(uri: str, payload: dict[str, Any]) -> None:
    """Write a selected model (``model.pt``) to a local path or URI, atomically."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    fs, path = storage.filesystem(uri)
    storage.write_bytes_atomic(fs, path, buf.getvalue())


def read_model(uri: str) -> dict[str, Any]:
    return load_state(uri)
