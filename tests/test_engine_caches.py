"""engine.plan's and engine.compact's caches under threads: the slider (session lock) and
the background curve (a copy of the weights, no session lock) use them at once.

Every access holds the module lock (checked on each dict operation, so a missing lock
fails deterministically), the two weight sets keep an entry each, and threads hammering
the caches get the answers a cold cache gives.
"""

from __future__ import annotations

import copy
import sys
import threading

import pytest
import torch

pytest.importorskip("torch_pruning")

from explorer.engine import plan  # noqa: E402
from explorer.engine.attention import graph_of  # noqa: E402
from explorer.engine.graph import graph_masks, group_scores  # noqa: E402
from explorer.models.zoo import build_model  # noqa: E402


def lenet(seed: int = 1):
    return build_model("lenet5", (64,), 10, image_shape=(1, 8, 8), init="he", seed=seed)


class Guarded(dict):
    """A cache that fails any operation made without `lock` held."""

    def __init__(self, lock, *args) -> None:
        super().__init__(*args)
        self.lock, self.unguarded = lock, []

    def _check(self, op: str) -> None:
        if not self.lock.locked():
            self.unguarded.append(op)

    def get(self, *a):
        self._check("get")
        return super().get(*a)

    def __setitem__(self, k, v) -> None:
        self._check("set")
        super().__setitem__(k, v)

    def pop(self, *a):
        self._check("pop")
        return super().pop(*a)

    def setdefault(self, *a):
        self._check("setdefault")
        return super().setdefault(*a)

    def __len__(self) -> int:
        self._check("len")
        return super().__len__()

    def __iter__(self):
        self._check("iter")
        return super().__iter__()


def test_every_cache_access_holds_the_lock(monkeypatch):
    lock = getattr(plan, "_LOCK", None)
    assert lock is not None, "engine.plan has no lock for its caches"
    plans, scores = Guarded(lock), Guarded(lock)
    monkeypatch.setattr(plan, "_PLANS", plans)
    monkeypatch.setattr(plan, "_SCORES", scores)
    model = lenet()
    groups, _ = graph_of(model)
    for _ in range(plan.PLANS_KEPT + 2):  # new group lists: evictions
        plan_copy = plan.plan_for([copy.copy(g) for g in groups])
    built = plan.plan_for(groups)
    built._ranks = Guarded(lock)
    built._dead = Guarded(lock)
    params = dict(model.named_parameters())
    graph_masks(params, groups, 0.5, "l1")
    graph_masks(params, groups, 0.5, "l1")  # hits
    built.removed_fraction(params)
    assert plan_copy is not built
    assert len(dict.keys(plans)) == plan.PLANS_KEPT
    unguarded = plans.unguarded + scores.unguarded + built._ranks.unguarded + \
        built._dead.unguarded
    assert not unguarded, f"cache operations without the lock: {sorted(set(unguarded))}"


def test_two_weight_sets_keep_their_own_scores():
    """The slider's weights and the curve thread's copy do not evict one another."""
    model = lenet()
    groups, _ = graph_of(model)
    slider = dict(model.named_parameters())
    curve = {k: v.detach().clone() for k, v in slider.items()}
    first = group_scores(groups[0], slider, "l1")
    group_scores(groups[0], curve, "l1")
    assert group_scores(groups[0], slider, "l1") is first  # still cached
    ranks = plan.plan_for(groups).ranks(slider, "l1")
    plan.plan_for(groups).ranks(curve, "l1")
    assert plan.plan_for(groups).ranks(slider, "l1") is ranks


def test_slider_moves_beside_a_curve_thread_get_cold_cache_answers():
    """Threads hammer the caches (two weight sets, evicting group lists); every answer
    equals the one computed first, and nothing raises."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    model = lenet()
    groups, _ = graph_of(model)
    sets = [dict(model.named_parameters())]
    sets.append({k: v.detach().clone().mul_(-1.5) for k, v in sets[0].items()})
    levels = (0.2, 0.5, 0.8)
    want = {(i, s): graph_masks(p, groups, s, "l2")[0] for i, p in enumerate(sets)
            for s in levels}
    errors: list[BaseException] = []

    def slider(which: int) -> None:
        try:
            for n in range(60):
                s = levels[n % len(levels)]
                got = graph_masks(sets[which], groups, s, "l2")[0]
                assert all(torch.equal(got[k], want[(which, s)][k]) for k in got)
                plan.plan_for(groups).removed_fraction(sets[which])
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    def churn() -> None:
        try:
            for _ in range(60):
                plan.plan_for([copy.copy(g) for g in groups])
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=slider, args=(i % 2,)) for i in range(4)]
    threads += [threading.Thread(target=churn) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors[0]
    assert len(plan._PLANS) <= plan.PLANS_KEPT

