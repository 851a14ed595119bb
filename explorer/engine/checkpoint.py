"""The shipped checkpoint: a trained default model, so a dashboard opens ready.

Stored as plain tensors and primitives, so it loads with torch.load(weights_only=True)
and can never run code.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import nn

from ..files import atomic_file, read_error

DEFAULT_EPOCHS = 20
DEFAULT_CHECKPOINT = "digits_mlp.pt"
FORMAT_VERSION = 1


def packaged_path(name: str = DEFAULT_CHECKPOINT) -> Path:
    """Path of a file shipped in explorer/resources (works from an installed copy)."""
    return Path(str(resources.files("explorer") / "resources" / name))


def save(path: str | Path, state: dict[str, torch.Tensor], config: dict,
         history: list[dict]) -> None:
    payload = {"format": FORMAT_VERSION, "config": dict(config),
               "state_dict": {k: v.detach().cpu().contiguous() for k, v in state.items()},
               "history": [dict(h) for h in history]}
    with atomic_file(path) as handle:  # a failed write leaves the old file as it was
        torch.save(payload, handle)


def load(path: str | Path) -> dict:
    """Read a checkpoint written by `save`; never unpickles code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickled code, truncated, not a torch file: name the file
        raise read_error(f"checkpoint {path}", err) from None


def load_matching(model: nn.Module, config: dict,
                  path: str | Path | None = None) -> list[dict] | None:
    """Load the shipped weights into `model` when they were made for this exact config.

    Returns the checkpoint's training history (so curves start from it), or None.
    """
    path = Path(path) if path is not None else packaged_path()
    if not path.exists():
        return None
    payload = load(path)
    if payload.get("config") != config:
        return None
    model.load_state_dict(payload["state_dict"])
    return [dict(h) for h in payload.get("history", [])]
