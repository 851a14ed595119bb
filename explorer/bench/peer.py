"""The peer: the notebook a person would write to watch pruning without Compression Explorer.

``explorer bench`` times one slider move of ours against one ``PeerNotebook.move`` on the
same model and data (``peer_slider_ratio``). It is written the plain way, with no
deliberate slowness: copy the model once; per move, restore the dense weights, prune
globally by magnitude with ``torch.nn.utils.prune.global_unstructured`` (L1Unstructured)
and make it permanent with ``prune.remove``, evaluate on the validation split (the same
loss and accuracy as ours: one forward pass under ``no_grad``), take a 60-bin
``np.histogram`` of each layer's weights, and redraw one matplotlib figure (Agg backend).

Run it on its own: ``python -m explorer.bench.peer [N_PARAMS]`` prints ms per move.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

BINS = 60


class PeerNotebook:
    """What the peer notebook holds: a working copy, the dense weights, one figure."""

    def __init__(self, model: nn.Module, val_x: torch.Tensor, val_y: torch.Tensor) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.model = copy.deepcopy(model).eval()  # copy the model once
        self.dense = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.layers = [m for m in self.model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        self.x, self.y = val_x, val_y
        self.fig, axes = plt.subplots(1, len(self.layers), figsize=(4 * len(self.layers), 3))
        self.axes = np.atleast_1d(axes)
        self.last: dict = {}

    def move(self, sparsity: float) -> float:
        """One slider move; returns its seconds."""
        start = time.perf_counter()
        self.model.load_state_dict(self.dense)  # back to the dense weights
        params = [(layer, "weight") for layer in self.layers]
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
        for layer, name in params:
            prune.remove(layer, name)
        with torch.no_grad():
            out = self.model(self.x)
            loss = float(nn.functional.cross_entropy(out, self.y))
            accuracy = float((out.argmax(-1) == self.y).float().mean())
        for ax, layer in zip(self.axes, self.layers):
            counts, edges = np.histogram(layer.weight.detach().cpu().numpy().ravel(), bins=BINS)
            ax.clear()
            ax.stairs(counts, edges, fill=True)
            ax.set_title(f"{sparsity:.0%} pruned")
        self.fig.suptitle(f"loss {loss:.3f}, accuracy {accuracy:.1%}")
        self.fig.canvas.draw()
        self.last = {"loss": loss, "accuracy": accuracy}
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    from .models import mlp_session

    n_params = float((argv if argv is not None else sys.argv[1:] or ["1e6"])[0])
    session = mlp_session(n_params)
    peer = PeerNotebook(session.model, session.data.val.x, session.data.val.y)
    values = (0.1, 0.5, 0.3, 0.9, 0.7, 0.2, 0.8, 0.4, 0.6, 0.95)
    for v in values[:2]:
        peer.move(v)  # warm-up
    times = [peer.move(v) for v in values]
    print(f"peer slider move at {n_params:g} parameters: p50 "
          f"{1e3 * statistics.median(times):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
