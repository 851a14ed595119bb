"""Training curves per model: teacher, distilled student and student alone each keep theirs.

A job records into the book of the model it trains; studies (sweeps, sensitivity) record
nothing, so they never draw on training curves. Each committed job leaves a checkpoint,
and Undo cuts the curves back to it, as Reset does to the first one. The worker thread
appends while the painter reads: every access holds the book's lock, and readers get
copies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..config import UNDO_MAX

MAX_STEP_POINTS = 20_000  # raw step losses kept per model; the plot shows at most 1,500


@dataclass
class Curves:
    """One model's curves; x is that model's own optimizer step count."""

    steps: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    epochs: list[tuple[float, float, float | None]] = field(default_factory=list)
    marks: list[tuple[float, float, str]] = field(default_factory=list)
    step_count: int = 0  # optimizer steps this model has taken (the x of the next point)
    dense: float | None = None  # the headline quantity of this model before pruning
    # one per committed job: the lengths to cut back to, or (a Reset's) the whole curves
    checkpoints: list[tuple | Curves] = field(default_factory=list)
    prune_before: list[dict | None] = field(default_factory=list)  # settings before each job

    def lengths(self) -> tuple:
        return (len(self.steps), len(self.epochs), len(self.marks), self.step_count, self.dense)

    def cut(self, lengths: tuple) -> None:
        n_steps, n_epochs, n_marks, self.step_count, self.dense = lengths
        del self.steps[n_steps:], self.losses[n_steps:]
        del self.epochs[n_epochs:], self.marks[n_marks:]

    def copy(self) -> Curves:
        """An independent copy, checkpoints included."""
        return Curves(list(self.steps), list(self.losses), list(self.epochs),
                      list(self.marks), self.step_count, self.dense,
                      [p.copy() if isinstance(p, Curves) else p for p in self.checkpoints],
                      list(self.prune_before))

    def original(self) -> Curves:
        """The curves before any job of this session (what Reset shows)."""
        if not self.checkpoints:
            out = self.copy()
        elif isinstance(self.checkpoints[0], Curves):
            return self.checkpoints[0].original()
        else:
            out = self.copy()
            out.cut(self.checkpoints[0])
        out.checkpoints, out.prune_before = [], []
        return out


class CurveBook:
    """Curves by model slot, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._curves: dict[str, Curves] = {}

    def start(self, slot: str, history: list[dict] | None = None) -> None:
        """A new model in `slot`: its curves start over (from `history`'s epoch records)."""
        curves = Curves()
        for h in history or ():
            if h.get("kind") == "epoch" and "step" in h:
                curves.epochs.append((float(h["step"]), float(h["val_loss"]),
                                      h.get("val_accuracy")))
                curves.step_count = max(curves.step_count, int(h["step"]))
        with self._lock:
            self._curves[slot] = curves

    def _get(self, slot: str) -> Curves:
        return self._curves.setdefault(slot, Curves())

    def dense(self, slot: str) -> float | None:
        with self._lock:
            return self._get(slot).dense

    def set_dense(self, slot: str, value: float | None) -> None:
        with self._lock:
            self._get(slot).dense = value

    def step_count(self, slot: str) -> int:
        with self._lock:
            return self._get(slot).step_count

    def checkpoint(self, slot: str, prune: dict | None) -> None:
        """Before a job that commits: what Undo returns to (curves and pruning settings)."""
        with self._lock:
            c = self._get(slot)
            c.checkpoints.append(c.lengths())
            c.prune_before.append(prune)
            if len(c.checkpoints) > UNDO_MAX:  # the session's undo stack is bounded too
                del c.checkpoints[0], c.prune_before[0]

    def undo(self, slot: str) -> dict | None:
        """Cut back to the last checkpoint (a Reset's: the curves before it, whole);
        returns the pruning settings before that job (or reset)."""
        with self._lock:
            c = self._get(slot)
            if not c.checkpoints:
                return None
            point, prune = c.checkpoints.pop(), c.prune_before.pop()
            if isinstance(point, Curves):
                self._curves[slot] = point
            else:
                c.cut(point)
            return prune

    def reset(self, slot: str, prune: dict | None = None) -> None:
        """Back to the curves the model had before any job of this session, one Undo away
        (`prune`: the pruning settings in force, which that Undo returns)."""
        with self._lock:
            c = self._get(slot)
            after = c.original()
            after.checkpoints, after.prune_before = [c.copy()], [prune]
            self._curves[slot] = after

    def add_step(self, slot: str, loss: float) -> None:
        with self._lock:
            c = self._get(slot)
            c.step_count += 1
            c.steps.append(float(c.step_count))
            c.losses.append(float(loss))
            if len(c.steps) > MAX_STEP_POINTS:  # keep memory bounded: thin evenly
                del c.steps[::2], c.losses[::2]

    def add_epoch(self, slot: str, val_loss: float, val_accuracy: float | None) -> None:
        with self._lock:
            c = self._get(slot)
            c.epochs.append((float(c.step_count), float(val_loss), val_accuracy))

    def add_mark(self, slot: str, x: float, loss: float, label: str) -> None:
        with self._lock:
            self._get(slot).marks.append((float(x), float(loss), label))

    def read(self, slot: str) -> Curves:
        """A copy of one model's curves (safe to use while a worker appends)."""
        with self._lock:
            c = self._get(slot)
            return Curves(list(c.steps), list(c.losses), list(c.epochs), list(c.marks),
                          c.step_count, c.dense)

    def slots(self) -> list[str]:
        with self._lock:
            return list(self._curves)
