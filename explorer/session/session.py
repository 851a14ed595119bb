"""Session: the one owner of data, model slots, dense base weights, masks and history.

The state and the slider's operations live in SessionCore (explorer.session.core); this
class builds a session from names or objects and adds the multi-step workflows as thin
delegates to the functions that implement them (students, iterative, workflows, persist).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

import torch
from torch import nn

from ..config import TrainConfig
from ..data.datasets import Dataset
from ..engine import checkpoint as ckpt
from ..engine.measure import bytes_dense
from ..engine.metrics import Snapshot
from ..engine.structure import shrink_model
from ..models.zoo import build_model, check_fits
from ..validate import check_bool, check_device_available, check_seed
from . import persist, students, workflows
from .core import Event, SessionCore, pick_device
from .iterative import run_iterative, step_plan
from .slots import ModelSlot, State, clone_state


class Session(SessionCore):
    """Owns the model under study and every change made to it."""

    # A text corpus or gpt-tiny gives the language-model variant; explorer.session.lm_session
    # registers it here (an entry: (predicate over (dataset, model), class)).
    variants: ClassVar[list[tuple[Callable[[object, object], bool], type]]] = []

    def __new__(cls, dataset: object = None, model: object = "mlp", *args: Any,
                **kwargs: Any) -> Session:
        if cls is Session:
            for accepts, variant in Session.variants:
                if accepts(dataset, model):
                    return super().__new__(variant)
        return super().__new__(cls)

    def __init__(self, dataset: str | Dataset | None = None, model: str | nn.Module = "mlp",
                 *, width: float = 1.0, init: str = "default", seed: int = 0,
                 device: str | torch.device | None = None, pretrained: bool = True,
                 hidden: tuple[int, ...] | None = None, train: object = None,
                 val: object = None, test: object = None,
                 task: str = "classification") -> None:
        device = check_device_available(pick_device(device))
        seed = check_seed("seed", seed)
        check_bool("pretrained", pretrained)
        data = self.load_data(dataset, train, val, test, task, seed, device).to(device)
        if isinstance(model, nn.Module):
            net, name = model, type(model).__name__
        else:
            net = build_model(model, data.input_shape, data.n_outputs, width=width,
                              init=init, seed=seed, hidden=hidden,
                              image_shape=data.image_shape)
            name = model
        net.to(device)
        check_fits(net, name, data)
        config: dict = {"dataset": data.name, "model": name, "width": width, "init": init,
                        "seed": seed}
        if hidden is not None:
            config["hidden"] = list(hidden)
        initial = clone_state(net.state_dict())  # lottery-ticket rewind "init"
        shipped = ckpt.load_matching(net, config) if pretrained else None
        super().__init__(data, ModelSlot(net, name, config, initial), seed=seed,
                         device=device, history=shipped, pretrained=shipped is not None)

    @classmethod
    def default(cls, device: str | torch.device | None = None) -> Session:
        """The digits MLP, trained (from the shipped checkpoint, else on the spot)."""
        session = cls("digits", "mlp", device=device)
        if not session.pretrained:
            session.train(epochs=ckpt.DEFAULT_EPOCHS)
            session.adopt_as_original()
        return session

    def save_checkpoint(self, path: str | Path) -> None:
        """Write the dense base as a shippable checkpoint (weights_only loadable)."""
        plain = [{k: v for k, v in h.items() if k != "snapshot"} for h in self.history]
        ckpt.save(path, self.base, self.config, plain)

    # ----- students (explorer.session.students) -------------------------------------
    def distill(self, student: float | nn.Module = 0.5, temperature: float | None = None,
                alpha: float = 0.7, epochs: int = 20, lr: float = 1e-3,
                optimizer: str = "adam", batch_size: int = 64, t_squared: bool = True,
                seed: int | None = None, stop: threading.Event | None = None,
                on_event: Callable[[Event], None] | None = None) -> Snapshot:
        """Distil the teacher slot's current model into a new student (slot "student").

        `student` is a width multiplier of the teacher's architecture or a module (copied).
        Classification: Hinton's loss at `temperature` (default 4.0), see
        explorer.engine.distill. Regression: MSE to the teacher's outputs; giving a
        temperature is a ValueError. Teacher outputs come from a cache keyed by the
        teacher's state and sample index. `seed` fixes the student's init and batch order
        (default: the session's seed + 1). Returns the student's Snapshot on the
        validation split (with teacher_agreement).
        """
        return students.distill(self, student, temperature, alpha, epochs, lr, optimizer,
                                batch_size, t_squared, seed, stop, on_event)

    def train_student_alone(self, student: float | nn.Module = 0.5, epochs: int = 20,
                            lr: float = 1e-3, optimizer: str = "adam", batch_size: int = 64,
                            seed: int | None = None, stop: threading.Event | None = None,
                            on_event: Callable[[Event], None] | None = None) -> Snapshot:
        """The same student as distill() (same init, same order, same budget), labels only."""
        config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, batch_size=batch_size)
        return students.run_student(self, "student_alone", student, None, config, seed, stop,
                                    on_event, {"distill": None})

    def build_student(self, student: float | nn.Module, seed: int) -> tuple[nn.Module, dict]:
        """The untrained student model and its config (see distill)."""
        return students.build_student(self, student, seed)

    def soft_targets(self, index: int, temperature: float = 4.0,
                     student: str | None = "student") -> dict:
        """Teacher's and student's softened probabilities for validation example `index`.

        Also the KL(teacher || student) at that temperature. Nothing is retrained, so a
        temperature slider can call this on every move. `student=None` shows the teacher
        alone (before any student exists); then "student" and "kl" are None.
        """
        return students.soft_targets(self, index, temperature, student)

    @torch.no_grad()
    def predictions(self, split: str = "val", limit: int = 2000) -> tuple:
        """(targets, outputs) of the selected model on `split` as NumPy, at most `limit` rows."""
        from ..engine.train import evaluate

        with self.lock:
            data = self.data.split(split)
            _, _, outputs = evaluate(self.model, data, self.task)
            return (data.y[:limit].cpu().numpy(), outputs[:limit].cpu().numpy())

    def measure(self, split: str = "val", *, full: bool = True, latency: bool = False,
                reference: torch.Tensor | None = None) -> Snapshot:
        """snapshot() plus the metrics that cost more (see explorer.engine.measure).

        full=False adds only the cheap ones (bytes, teacher agreement, mse); full=True adds
        precision/recall/F1/confusion, FLOPs and the speedup note; latency=True adds
        latency_ms_b1/_b256 (median of repeated runs). `reference`: outputs to measure
        teacher_agreement against (default: the teacher slot, for students).
        """
        return self.measure_slot(self.selected, split, full=full, latency=latency,
                                 reference=reference)

    def measure_slot(self, slot: str, split: str = "val", *, full: bool = True,
                     latency: bool = False, reference: torch.Tensor | None = None) -> Snapshot:
        """measure() for any slot; the selection is restored afterwards."""
        return students.measure_slot(self, slot, split, full=full, latency=latency,
                                     reference=reference)

    def bytes_shrunk(self) -> int | None:
        """fp32 bytes of the physically shrunk model, when structured pruning is in force."""
        if not getattr(self.prune_config, "structured", False):
            return None
        return bytes_dense(self.shrink())

    # ----- multi-step compression (explorer.session.workflows, .iterative) ----------
    def rewind_state(self, rewind: str | int) -> State:
        """The weights `rewind` names: "init", or those after `rewind` training epochs."""
        return workflows.rewind_state(self, rewind)

    def rewind_to(self, rewind: str | int) -> None:
        """Reset survivors to the rewind weights; pruned entries keep their base values."""
        workflows.rewind_to(self, rewind)

    def adopt_as_original(self) -> None:
        """Make the current dense base what reset() returns to (e.g. after first training)."""
        workflows.adopt_as_original(self)

    def prune_iteratively(self, target: float | None = None, steps: int = 3,
                          schedule: str = "agp", finetune_epochs: int = 1,
                          rewind: str | int | None = None, scope: str = "layer",
                          structured: bool = False, norm: str = "l1", lr: float = 1e-3,
                          optimizer: str = "adam", batch_size: int = 64,
                          stop: threading.Event | None = None,
                          on_event: Callable[[Event], None] | None = None, *,
                          std: float | Sequence[float] | None = None,
                          round_fraction: float | None = None,
                          output_fraction: float | None = None) -> Snapshot:
        """Prune over `steps` steps (masks stack), fine-tuning after each.

        Exactly one rule: `target` sparsity reached by `schedule`; `std` (Han et al.): each
        layer thresholded at q_k * std of its current weights, q_k = `std` reached by
        `schedule` or a list of factors; `round_fraction` (Frankle & Carbin): each step
        removes round(p * remaining) weights per layer, the output layer at
        `output_fraction` (default p / 2). See explorer.session.iterative.
        Starts from the dense base. Each step's Snapshot goes to history as "prune_step".
        """
        stop = threading.Event() if stop is None else stop  # set when a fine-tune diverges
        plan = step_plan(self.prunable, target, steps, schedule, scope, structured, norm,
                         std=std, round_fraction=round_fraction,
                         output_fraction=output_fraction)
        return run_iterative(self, plan, schedule, finetune_epochs, rewind,
                             TrainConfig(epochs=max(finetune_epochs, 1), lr=lr,
                                         optimizer=optimizer, batch_size=batch_size),
                             stop, on_event)

    def prune_per_layer(self, targets: Mapping[str, float]) -> Snapshot:
        """Prune each named layer of the dense base to its own sparsity; others stay dense."""
        return workflows.prune_per_layer(self, targets)

    def install_masks(self, masks: dict[str, torch.Tensor]) -> Snapshot:
        """Apply given boolean masks to the dense base (e.g. a lottery ticket's)."""
        return workflows.install_masks(self, masks)

    def shrink(self) -> nn.Module:
        """A new, physically smaller copy of the pruned model (the session is unchanged).

        Removes every channel whose output is exactly zero; outputs equal the masked model's.
        """
        with self.lock:
            return shrink_model(self.model)

    def export(self, path: str | Path, kind: str = "masked") -> dict:
        """Write the model as masked | zeros | shrunk (see explorer.engine.export)."""
        return workflows.export_session(self, path, kind)

    # ----- persistence (explorer.session.persist) -----------------------------------
    def save(self, path: str | Path) -> None:
        """Write the whole session (every slot, undo stack, masks, history) to `path`.

        Plain tensors and data only: Session.load reads it with weights_only=True.
        """
        persist.save_session(self, path)

    def to_bytes(self) -> bytes:
        """What save() writes, as bytes (for a download)."""
        return persist.session_bytes(self)

    @classmethod
    def load(cls, source: str | Path | bytes | IO[bytes],
             device: str | None = None) -> Session:
        """A Session rebuilt from a Session.save file, its bytes or a binary file object;
        ValueError when the file is refused (code in the pickle, truncated, not a session
        file, weights of another model)."""
        return persist.load_session(source, device=device, cls=cls)
