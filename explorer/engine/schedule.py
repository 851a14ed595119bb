"""Pruning schedules for iterative pruning (pure functions, checked against the papers).

Sparsity schedules, steps k = 1..K; step K always lands exactly on the target s_f:
- oneshot: every step is s_f (K = 1 is the classic prune-then-fine-tune).
- linear:  s_k = s_0 + (s_f - s_0) * k / K  (s_0 = `initial`, 0 by default).
- agp:     s_k = s_f + (s_0 - s_f) * (1 - k / K) ** 3  (Zhu & Gupta 2017, with t - t0 = k,
           n * dt = K), pruning fast early while many redundant weights remain.

Two papers prune by other rules, also given here:
- Frankle & Carbin 2019 (lottery tickets): every round removes round(p * remaining) of each
  layer's remaining weights, p = 0.2 for hidden layers and 0.1 for the output layer
  (`round_rates`, `remaining_after`).
- Han et al. 2015: each step thresholds every layer at q_k * std(layer weights); the quality
  factors q_k follow the same schedules, scaled (`quality_schedule`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import SCHEDULES, STEPS_MAX, check_choice, check_number

LOTTERY_RATE = 0.2  # Frankle & Carbin: fraction of the remaining weights pruned per round
LOTTERY_OUTPUT_RATE = 0.1  # ... and of the output layer, at half that rate


def step_sparsities(target: float, steps: int, schedule: str = "agp",
                    initial: float = 0.0) -> list[float]:
    """Sparsity after each of the `steps` pruning steps; the last equals `target`."""
    target = check_number("target", target, 0.0, 1.0)
    steps = int(check_number("steps", steps, 1, STEPS_MAX, integer=True))
    check_choice("schedule", schedule, SCHEDULES)
    initial = check_number("initial", initial, 0.0, target)
    if schedule == "oneshot":
        return [target] * steps
    if schedule == "linear":
        return [initial + (target - initial) * k / steps for k in range(1, steps)] + [target]
    return [target + (initial - target) * (1 - k / steps) ** 3
            for k in range(1, steps)] + [target]


def quality_schedule(quality: float | Sequence[float], steps: int,
                     schedule: str = "linear") -> list[float]:
    """Han's quality factor q_k per step: the given list, or `quality` reached by `schedule`.

    A number q gives q * f_k with f_k the schedule's fractions (linear: q k / K; agp:
    q (1 - (1 - k/K)^3); oneshot: q every step). A list gives its values, one per step.
    """
    if isinstance(quality, Sequence) and not isinstance(quality, str):
        values = [check_number("std", q, 0.0, 1e6) for q in quality]
        if not values or len(values) > STEPS_MAX:
            raise ValueError(f"std must list 1 to {STEPS_MAX} quality factors; got {quality!r}")
        return values
    quality = check_number("std", quality, 0.0, 1e6)
    return [quality * f for f in step_sparsities(1.0, steps, schedule)]


def round_rates(names: Sequence[str], rate: float = LOTTERY_RATE,
                output_rate: float | None = None) -> dict[str, float]:
    """Per-layer fraction of the remaining weights pruned per round (Frankle & Carbin).

    The last name is the output layer; it gets `output_rate` (default: half of `rate`).
    """
    rate = check_number("round_fraction", rate, 0.0, 1.0)
    output_rate = rate / 2 if output_rate is None else \
        check_number("output_fraction", output_rate, 0.0, 1.0)
    names = list(names)
    return {n: (output_rate if i == len(names) - 1 else rate) for i, n in enumerate(names)}


def remaining_after(numel: int, rate: float, rounds: int) -> list[int]:
    """Weights a layer of `numel` keeps after each of `rounds` rounds at `rate`.

    Round r removes round(rate * remaining) of what is left, as Frankle & Carbin prune.
    """
    left, out = int(numel), []
    for _ in range(int(rounds)):
        left -= round(rate * left)
        out.append(left)
    return out
