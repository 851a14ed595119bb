"""The papers' own procedures (issue 16): Frankle & Carbin's rounds, Han's std thresholds,
and the schedule and ranking fixes that came with them."""

from __future__ import annotations

import pytest
import torch

from explorer import Session
from explorer.engine.heads import plan_head_removal
from explorer.engine.schedule import step_sparsities
from explorer.engine.train import EpochEvent


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _masks_after_each_step(session: Session, **kwargs) -> tuple[list[dict], list[dict]]:
    """Run prune_iteratively; per step, the installed masks and the model's weights at the
    end of that step's fine-tuning (the weights the next step ranks)."""
    masks, weights = [], []

    def on_event(event: object) -> None:
        if isinstance(event, EpochEvent) and event.epoch == event.epochs:
            masks.append({n: m.clone() for n, m in session.slot.masks.items()})
            params = dict(session.model.named_parameters())
            weights.append({n: params[n].detach().clone() for n in session.slot.prunable})

    session.prune_iteratively(on_event=on_event, **kwargs)
    return masks, weights


def test_lottery_rounds_remove_a_fifth_of_the_remaining_weights_per_layer():
    """Every round removes round(0.2 x remaining) weights of each hidden layer and
    round(0.1 x remaining) of the output layer, counted from the masks, in one chain."""
    from explorer.engine.schedule import remaining_after  # new in issue 16

    session = Session("digits", "mlp", seed=3)
    names = session.slot.prunable
    masks, _ = _masks_after_each_step(session, round_fraction=0.2, output_fraction=0.1,
                                      steps=5, finetune_epochs=1, rewind="init")
    assert len(masks) == 5
    remaining = {n: session.slot.base[n].numel() for n in names}
    for k, step in enumerate(masks, start=1):
        for i, name in enumerate(names):
            rate = 0.1 if i == len(names) - 1 else 0.2
            kept = int(step[name].sum())
            assert remaining[name] - kept == round(rate * remaining[name]), (k, name)
            if k > 1:  # one chain: each level's mask lies inside the previous one
                assert not (step[name] & ~masks[k - 2][name]).any()
            remaining[name] = kept
    numel = session.slot.base[names[0]].numel()
    assert [int(m[names[0]].sum()) for m in masks] == remaining_after(numel, 0.2, 5)


def test_lottery_round_ranks_the_survivors_by_trained_magnitude():
    """prune_remaining drops exactly the smallest |w| among the survivors."""
    from explorer.engine.prune import MagnitudeIndex, prune_remaining  # new in issue 16
    from explorer.engine.schedule import round_rates
    torch.manual_seed(0)
    w = torch.randn(40, 30)
    previous = {"w": torch.rand(40, 30) > 0.3}
    result = prune_remaining(MagnitudeIndex({"w": w}), previous, {"w": 0.2})
    survivors = w.abs()[previous["w"]]
    k = round(0.2 * survivors.numel())
    cut = survivors.sort().values[k]
    expected = previous["w"] & (w.abs() >= cut)
    assert torch.equal(result.masks["w"], expected)
    assert round_rates(["a", "b", "out"], 0.2) == {"a": 0.2, "b": 0.2, "out": 0.1}


def test_han_thresholds_are_quality_times_std_of_the_current_weights():
    """At each step every layer's threshold is q_k x std of that layer's weights as they
    stand (after the previous retraining, pruned zeros included), and the new mask keeps
    exactly the previous survivors with |w| >= that threshold."""
    session = Session("digits", "mlp", seed=2)
    dense = {n: session.slot.base[n].clone() for n in session.slot.prunable}
    qualities = [0.5, 1.0, 1.5]
    masks, weights = _masks_after_each_step(session, std=qualities, finetune_epochs=1,
                                            lr=1e-4)
    steps = [h for h in session.history if h["kind"] == "prune_step"]
    assert [h["std"] for h in steps] == qualities
    before = [dense, *weights[:-1]]
    previous = [None, *masks[:-1]]
    for k, q in enumerate(qualities):
        for name in session.slot.prunable:
            current = before[k][name]
            threshold = q * float(current.std())
            assert steps[k]["cuts"][name] == pytest.approx(threshold, rel=1e-6), (k, name)
            expected = current.abs() >= threshold
            if previous[k] is not None:
                expected &= previous[k][name]
            assert torch.equal(masks[k][name], expected), (k, name)
    assert steps[-1]["actual_sparsity"] > steps[0]["actual_sparsity"] > 0


def test_prune_iteratively_takes_exactly_one_rule():
    """target, std and round_fraction exclude each other; bad combinations are named."""
    session = Session("digits", "mlp")
    for kwargs, word in (({"target": 0.5, "std": 1.0}, "exactly one"), ({}, "none"),
                         ({"std": 1.0, "scope": "global"}, "scope"),
                         ({"round_fraction": 0.2, "structured": True}, "structured"),
                         ({"target": 0.5, "output_fraction": 0.1}, "output_fraction"),
                         ({"round_fraction": 1.5}, "round_fraction")):
        with pytest.raises(ValueError, match=word):
            session.prune_iteratively(**kwargs)
    assert session.slot.masks is None


def test_quality_schedule_and_linear_initial():
    """q_k follows the schedule scaled to q; linear starts from `initial` (item 8)."""
    from explorer.engine.schedule import quality_schedule  # new in issue 16

    assert step_sparsities(0.8, 4, "linear", initial=0.4) == pytest.approx(
        [0.5, 0.6, 0.7, 0.8])
    assert step_sparsities(0.8, 4, "linear", initial=0.4)[-1] == 0.8
    assert quality_schedule(2.0, 4, "linear") == [0.5, 1.0, 1.5, 2.0]
    assert quality_schedule([0.3, 0.9], 2) == [0.3, 0.9]


def test_global_head_ranking_is_invariant_to_a_block_scale():
    """Scaling one block's raw scores (deeper blocks have larger projection norms) does
    not move the global plan: scores are normalised per block first (item 8)."""
    torch.manual_seed(1)
    scores = [torch.rand(4), torch.rand(4), torch.rand(4)]
    plan = plan_head_removal(scores, 0.5, scope="global")
    scaled = [scores[0] * 100.0, scores[1], scores[2] * 0.01]
    assert plan_head_removal(scaled, 0.5, scope="global") == plan
    assert sum(map(len, plan.values())) == 6
