"""Random sequences of API calls keep the session's invariants (Hypothesis).

Calls: prune (three modes, per layer), train with tiny step budgets, undo, reset,
reset_pruning, rewind, a save/load round trip that continues on the loaded copy, and bad
values mixed in. After every call: masked weights are exactly zero, the model shows the
dense base wherever nothing is masked (the base is restorable bit for bit), the undo
stack and the history are bounded lists within their (here lowered) caps; a refused call
raises ValueError and changes nothing; a loaded session saves exactly what was saved.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_util import fingerprint, same, unchanged

from explorer import Session
from explorer.session import persist, slots
from explorer.session import session as session_module
from explorer.session.bounded import BoundedList
from explorer.session.persist import session_payload

UNDO_CAP, HISTORY_CAP = 3, 6  # lowered so that a short sequence reaches them

BAD_NUMBERS = st.sampled_from([-0.1, 1.5, math.nan, math.inf, 10**400, "0.5", None, True])
sparsity = st.floats(0.0, 1.0, allow_nan=False)
CALLS = st.one_of(
    st.tuples(st.just("prune"), sparsity),
    st.tuples(st.just("prune_threshold"), st.floats(0.0, 0.5, allow_nan=False)),
    st.tuples(st.just("prune_std"), st.floats(0.0, 3.0, allow_nan=False)),
    st.tuples(st.just("prune_per_layer"), sparsity),
    st.tuples(st.just("train"), st.integers(1, 3)),
    st.tuples(st.just("undo"), st.none()),
    st.tuples(st.just("reset"), st.none()),
    st.tuples(st.just("reset_pruning"), st.none()),
    st.tuples(st.just("rewind"), st.sampled_from(["init", 1, 99])),
    st.tuples(st.just("round_trip"), st.none()),
    st.tuples(st.just("bad_prune"), BAD_NUMBERS),
    st.tuples(st.just("bad_train"), st.sampled_from([{"steps": 0}, {"lr": 50.0},
                                                     {"steps": 10**400},
                                                     {"batch_size": -1},
                                                     {"optimizer": "adagrad"}])),
)


def apply(s: Session, call: str, value: object) -> Session:
    """Run one call; returns the session to go on with (a round trip swaps in the copy)."""
    if call == "prune":
        s.prune(sparsity=value)
    elif call == "prune_threshold":
        s.prune(threshold=value)
    elif call == "prune_std":
        s.prune(std=value)
    elif call == "prune_per_layer":
        s.pruning.per_layer({s.slot.prunable[0]: value})
    elif call == "train":
        s.train(steps=value, lr=1e-3)
    elif call == "undo":
        s.undo()
    elif call == "reset":
        s.reset()
    elif call == "reset_pruning":
        s.reset_pruning()
    elif call == "rewind":
        s.pruning.rewind_to(value)
    elif call == "round_trip":
        loaded = Session.load(s.to_bytes())
        assert same(session_payload(loaded), session_payload(s)), "loaded != saved"
        assert same(fingerprint(loaded), fingerprint(s))
        return loaded
    elif call == "bad_prune":
        s.prune(sparsity=value)
    else:
        s.train(**value)
    return s


def refusal_expected(s: Session, call: str, value: object) -> bool:
    return call in ("bad_prune", "bad_train") or (call == "undo" and not s.slot.undo_stack) \
        or (call == "rewind" and value not in ("init", *s.slot.rewind_states))


def check_invariants(s: Session) -> None:
    params = dict(s.model.named_parameters())
    state = s.model.state_dict()
    masks = s.slot.masks or {}
    for name, base in s.slot.base.items():
        if name in masks:  # pruned entries exactly zero, survivors the base's values
            assert torch.equal(state[name][~masks[name]], torch.zeros_like(base[~masks[name]]))
            assert torch.equal(state[name][masks[name]], base[masks[name]])
        else:
            assert torch.equal(state[name], base), name
    assert set(masks) <= set(params)
    assert all(m.dtype == torch.bool for m in masks.values())
    assert isinstance(s.slot.undo_stack, BoundedList) and len(s.slot.undo_stack) <= UNDO_CAP
    assert isinstance(s.history, BoundedList) and len(s.history) <= HISTORY_CAP


@pytest.fixture(scope="module")
def lowered_caps():
    saved = slots.UNDO_MAX, session_module.HISTORY_MAX, persist.HISTORY_MAX
    slots.UNDO_MAX, session_module.HISTORY_MAX, persist.HISTORY_MAX = \
        UNDO_CAP, HISTORY_CAP, HISTORY_CAP
    yield
    slots.UNDO_MAX, session_module.HISTORY_MAX, persist.HISTORY_MAX = saved


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(calls=st.lists(CALLS, min_size=1, max_size=9))
def test_random_call_sequences_keep_the_invariants(lowered_caps, calls) -> None:
    torch.manual_seed(0)
    s = Session("digits", "mlp", hidden=(16,), device="cpu", pretrained=False)
    for call, value in calls:
        if refusal_expected(s, call, value):
            before = fingerprint(s)
            with pytest.raises(ValueError):
                apply(s, call, value)
            unchanged(before, s)
        else:
            s = apply(s, call, value)
        check_invariants(s)
    s.reset_pruning()  # the base comes back bit for bit
    assert same(s.model.state_dict(), s.slot.base)
