"""Sweep T: every temperature over several seeds, as one background job.

Per seed (studies.stats.seed_list from the session's seed + 1, distill's own default), the
student alone trains once, then the same student (same init, order and budget) is
distilled at each temperature. A temperature's row holds its seeds' values, their mean and
95% t-interval (studies.stats.summarize) and the paired difference from the student alone
(studies.stats.paired): one accuracy on a few hundred validation images moves by a point or
more from seed to seed, so only the interval says whether distillation helped.

Each temperature's first-seed student is kept, so moving the temperature slider after a
sweep shows that temperature's student (no retraining): Session.students.take holds a
slot aside and Session.students.put puts it back.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..studies.stats import paired, seed_list, summarize

if TYPE_CHECKING:
    from ..session.session import Session
    from ..session.slots import ModelSlot

SWEEP_TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0)
SWEEP_SLOTS = ("student", "student_alone")


@dataclass
class Sweep:
    """A finished (or stopped) sweep: rows per temperature, the alone baseline, students."""

    metric: str  # accuracy | perplexity
    higher_is_better: bool
    seeds: list[int]
    alone: dict | None = None  # summarize() of the alone student's values over seeds
    alone_values: list[float] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)  # complete temperatures only, in order
    students: dict[float, ModelSlot | None] = field(default_factory=dict)  # T -> its slot
    live: bool = True  # the kept students still stand for the rows (no newer distil)
    regime: str = ""  # the students' regime in words (Regime.describe)

    @property
    def temperatures(self) -> list[float]:
        return [r["temperature"] for r in self.rows]

    def best(self) -> dict | None:
        sign = 1.0 if self.higher_is_better else -1.0
        return max(self.rows, key=lambda r: sign * r["summary"]["mean"], default=None)

    def nearest(self, temperature: float) -> float | None:
        """The swept temperature nearest `temperature` on the slider's log scale."""
        temps = self.temperatures
        if not temps:
            return None
        return min(temps, key=lambda t: (abs(math.log(t) - math.log(temperature)), t))

    def row(self, temperature: float) -> dict | None:
        return next((r for r in self.rows if r["temperature"] == temperature), None)


def _value(snap: Any, metric: str) -> float:
    if metric == "accuracy":
        value = snap.accuracy
    else:  # perplexity
        value = math.exp(min(snap.loss, 50.0))
    if value is None or not math.isfinite(value):
        raise ValueError(f"the student's validation {metric} is {value!r}: not a number")
    return float(value)


def _row(temperature: float, values: list[float], agree: list[float],
         alone_values: list[float]) -> dict:
    row = {"temperature": temperature, "values": values, "summary": summarize(values),
           "agreement": sum(agree) / len(agree) if agree else None, "vs_alone": None}
    if len(alone_values) == len(values):
        row["vs_alone"] = paired(values, alone_values)
    return row


def run_sweep(session: Session, temperatures: tuple[float, ...], n_seeds: int, metric: str,
              higher_is_better: bool, student: float, train: dict, soft: dict,
              regime: dict | None = None, stop: threading.Event | None = None,
              on_event: Callable | None = None) -> Sweep:
    """Alone, then distilled at each temperature, per seed; see the module docstring.

    `train`: epochs and lr; `soft`: alpha and t_squared; `regime`: labelled / leave_out
    (Session.distill's names). Atomic: on an exception the student slots are as before
    and the exception propagates. A Stop keeps the temperatures whose seeds all finished.
    """
    if not temperatures:
        raise ValueError("temperatures must name at least one value; got an empty list")
    seeds = seed_list(session.seed + 1, n_seeds)
    regime = regime or {}
    sweep = Sweep(metric, higher_is_better, seeds)
    before = {slot: session.students.take(slot) for slot in SWEEP_SLOTS}
    selected = session.selected
    emit = on_event or (lambda _event: None)
    total = len(temperatures)

    def stopped() -> bool:
        return stop is not None and stop.is_set()

    try:
        alone_first = None
        for i, seed in enumerate(seeds):
            emit({"stage": f"student alone, seed {i + 1} of {len(seeds)}"})
            snap = session.students.train_alone(student=student, seed=seed, stop=stop,
                                               on_event=on_event, **train, **regime)
            if stopped():
                break
            sweep.alone_values.append(_value(snap, metric))
            if i == 0:
                alone_first = session.students.take("student_alone")
        if sweep.alone_values:
            sweep.alone = summarize(sweep.alone_values)
        for k, temperature in enumerate(temperatures):
            values, agree, first = [], [], None
            for i, seed in enumerate(seeds):
                if stopped():
                    break
                emit({"stage": f"T = {temperature:g}, {k + 1} of {total}"
                      + (f", seed {i + 1} of {len(seeds)}" if len(seeds) > 1 else "")})
                snap = session.students.distill(student=student, temperature=temperature, seed=seed,
                                       stop=stop, on_event=on_event, **train, **soft,
                                       **regime)
                if stopped():
                    break
                values.append(_value(snap, metric))
                if snap.extra.get("teacher_agreement") is not None:
                    agree.append(float(snap.extra["teacher_agreement"]))
                if i == 0:
                    first = session.students.take("student")
            if len(values) < len(seeds):
                break  # stopped inside this temperature: its row would be partial
            sweep.rows.append(_row(float(temperature), values, agree, sweep.alone_values))
            sweep.students[float(temperature)] = first
    except BaseException:
        for slot, held in before.items():
            session.students.put(slot, held, select=selected)
        raise
    # the slots show the first seed's students (what the table's selected row names)
    session.students.put("student_alone", alone_first if len(sweep.alone_values) == len(seeds)
                         else before["student_alone"])
    best = sweep.best()
    session.students.put("student", before["student"] if best is None
                         else sweep.students[best["temperature"]], select=selected)
    return sweep
