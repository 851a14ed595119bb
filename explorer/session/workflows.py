"""The compression workflow on top of a Session: rewind, iterate, shrink, export,
sensitivity, sweeps and persistence. A mixin so session.py keeps to the state it owns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import PruneConfig, TrainConfig, check_choice
from ..engine.metrics import Snapshot
from ..engine.prune import apply_masks
from ..engine.structure import shrink_model
from ..validate import check_output_path

if TYPE_CHECKING:
    from .session import Event, Session

State = dict[str, torch.Tensor]


def clone_state(state: State) -> State:
    """A detached copy of every tensor (states are never shared between owners)."""
    return {k: v.detach().clone() for k, v in state.items()}


_clone = clone_state


class CompressionMixin:
    """Methods of Session that drive multi-step compression; they use its state only."""

    def rewind_state(self, rewind: str | int) -> State:
        """The weights `rewind` names: "init", or those after `rewind` training epochs."""
        if rewind == "init":
            return self.initial
        if isinstance(rewind, int) and not isinstance(rewind, bool) and rewind in \
                self.rewind_states:
            return self.rewind_states[rewind]
        raise ValueError(f"rewind must be None, 'init' or a recorded epoch "
                         f"{sorted(self.rewind_states)}; got {rewind!r}")

    def rewind_to(self, rewind: str | int) -> None:
        """Reset survivors to the rewind weights; pruned entries keep their base values."""
        with self._lock:
            target = self.rewind_state(rewind)
            new_base = _clone(target)
            for name, mask in (self.masks or {}).items():
                new_base[name] = torch.where(mask, target[name], self.base[name])
            masks, config = self.masks, self.prune_config
            self.undo_stack.append(_clone(self.base))
            self._set_base(new_base)
            if masks is not None:
                apply_masks(self._params_for(masks), self.base, masks)
                self.masks, self.prune_config = masks, config

    def prune_iteratively(self, target: float, steps: int = 3, schedule: str = "agp",
                          finetune_epochs: int = 1, rewind: str | int | None = None,
                          scope: str = "layer", structured: bool = False, norm: str = "l1",
                          lr: float = 1e-3, optimizer: str = "adam", batch_size: int = 64,
                          stop: threading.Event | None = None,
                          on_event: Callable[[Event], None] | None = None) -> Snapshot:
        """Prune to `target` over `steps` steps (masks stack), fine-tuning after each.

        Starts from the dense base. Each step's Snapshot goes to history as "prune_step".
        """
        from .iterative import run_iterative

        stop = threading.Event() if stop is None else stop  # set when a fine-tune diverges
        return run_iterative(self, target, steps, schedule, finetune_epochs, rewind,
                             PruneConfig(sparsity=target, scope=scope, structured=structured,
                                         norm=norm),
                             TrainConfig(epochs=max(finetune_epochs, 1), lr=lr,
                                         optimizer=optimizer, batch_size=batch_size),
                             stop, on_event)

    def adopt_as_original(self) -> None:
        """Make the current dense base what reset() returns to (e.g. after first training)."""
        with self._lock:
            self.original = _clone(self.base)
            self.undo_stack.clear()

    def shrink(self) -> nn.Module:
        """A new, physically smaller copy of the pruned model (the session is unchanged).

        Removes every channel whose output is exactly zero; outputs equal the masked model's.
        """
        with self._lock:
            return shrink_model(self.model)

    def export(self, path: str | Path, kind: str = "masked") -> dict:
        """Write the model as masked | zeros | shrunk (see explorer.engine.export); returns the payload."""
        from ..engine.export import EXPORT_KINDS, export_model

        check_choice("kind", kind, EXPORT_KINDS)
        path = check_output_path("path", path)
        with self._lock:
            masks = self.masks or {n: torch.ones_like(self.base[n], dtype=torch.bool)
                                   for n in self._prunable}
            return export_model(path, self.model, kind, base=self.base, masks=masks)

    # ----- sensitivity and sweeps (explorer.studies.sensitivity, explorer.studies.sweep) -------------
    def sensitivity(self, sparsities: tuple[float, ...] | list[float] | None = None,
                    finetune_epochs: int = 0, layers: list[str] | None = None,
                    lr: float = 1e-4, stop: threading.Event | None = None,
                    on_event: Callable | None = None) -> dict:
        """Validation accuracy with one layer at a time pruned (see explorer.studies.sensitivity);
        the session is restored exactly afterwards."""
        from ..studies.sensitivity import DEFAULT_SPARSITIES, sensitivity

        return sensitivity(self, DEFAULT_SPARSITIES if sparsities is None else sparsities,
                           finetune_epochs, layers, lr, stop, on_event)

    def prune_per_layer(self, targets: dict[str, float]) -> Snapshot:
        """Prune each named layer of the dense base to its own sparsity; others stay dense."""
        from ..studies.sensitivity import prune_per_layer

        return prune_per_layer(self, targets)

    def sweep(self, grid, executor: str = "local", address: str | None = None,
              workers: int | None = None, threads: int = 1,
              stop: threading.Event | None = None, on_row: Callable | None = None):
        """Run a grid of settings from the current dense base (see explorer.studies.sweep);
        returns a SweepTable (rows, .to_csv(), .to_json()). The session is unchanged."""
        from ..studies.sweep import sweep

        return sweep(self, grid, executor, address, workers, threads, stop, on_row)

    # ----- persistence (issue 8): the logic lives in explorer.session.persist -----------------
    def save(self, path: str | Path) -> None:
        """Write the whole session (every slot, undo stack, masks, history) to `path`.

        Plain tensors and data only: Session.load reads it with weights_only=True.
        """
        from .persist import save_session

        save_session(self, path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> Session:
        """A Session rebuilt from a Session.save file; ValueError when the file is refused
        (code in the pickle, truncated, not a session file, weights of another model)."""
        from .persist import load_session

        return load_session(path, device=device, cls=cls)
