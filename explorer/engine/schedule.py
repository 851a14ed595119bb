"""Sparsity schedules for iterative pruning (pure functions, checked against the papers).

Steps k = 1..K; step K always lands exactly on the target s_f.
- oneshot: every step is s_f (K = 1 is the classic prune-then-fine-tune).
- linear:  s_k = s_f * k / K.
- agp:     s_k = s_f + (s_0 - s_f) * (1 - k / K) ** 3  (Zhu & Gupta 2017, with t - t0 = k,
           n * dt = K), pruning fast early while many redundant weights remain.
"""

from __future__ import annotations

from ..config import SCHEDULES, STEPS_MAX, check_choice, check_number


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
        return [target * k / steps for k in range(1, steps)] + [target]
    return [target + (initial - target) * (1 - k / steps) ** 3
            for k in range(1, steps)] + [target]
