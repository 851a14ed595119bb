"""Make the shipped checkpoint of the default model (digits MLP), deterministically.

Run: python assets/make_checkpoint.py  (or `make checkpoint`). Writes
explorer/resources/digits_mlp.pt and an identical copy in assets/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from explorer import Session
from explorer.engine.checkpoint import DEFAULT_CHECKPOINT, DEFAULT_EPOCHS

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    torch.set_num_threads(1)  # results differ between thread counts; fix it
    torch.use_deterministic_algorithms(True)
    session = Session("digits", "mlp", device="cpu", pretrained=False, seed=0)
    session.train(epochs=DEFAULT_EPOCHS)
    snap = session.snapshot("test")
    target = ROOT / "explorer" / "resources" / DEFAULT_CHECKPOINT
    session.history.append({"kind": "checkpoint", "test_accuracy": snap.accuracy})
    session.save_checkpoint(target)
    shutil.copyfile(target, ROOT / "assets" / DEFAULT_CHECKPOINT)
    print(f"wrote {target} (test accuracy {snap.accuracy:.4f}, "
          f"val accuracy {session.snapshot('val').accuracy:.4f})")


if __name__ == "__main__":
    main()
