"""Iterative pruning: schedules against the formulas, stacking masks, rewinding, quality."""

from __future__ import annotations

import pytest
import torch

from explorer import Session
from explorer.engine.schedule import step_sparsities
from explorer.engine.train import StepEvent
from explorer.session.slots import clone_state as _clone


@pytest.mark.parametrize("target", [0.5, 0.9, 0.973])
@pytest.mark.parametrize("steps", [1, 2, 3, 7])
def test_schedules_equal_the_formulas_and_end_at_target(target: float, steps: int) -> None:
    """linear s_k = s_f k/K; AGP s_k = s_f + (0 - s_f)(1 - k/K)^3; both end at s_f."""
    linear = step_sparsities(target, steps, "linear")
    agp = step_sparsities(target, steps, "agp")
    for k in range(1, steps + 1):
        assert linear[k - 1] == pytest.approx(target * k / steps, abs=1e-12)
        assert agp[k - 1] == pytest.approx(target + (0 - target) * (1 - k / steps) ** 3,
                                           abs=1e-12)
    assert linear[-1] == target and agp[-1] == target  # exactly, not approximately
    assert step_sparsities(target, steps, "oneshot") == [target] * steps
    assert all(a <= b for a, b in zip(agp, agp[1:]))
    assert step_sparsities(0.8, 4, "agp", initial=0.2)[0] == pytest.approx(
        0.8 - 0.6 * 0.75 ** 3)


@pytest.mark.parametrize("bad", [{"steps": 0}, {"schedule": "cubic"}, {"target": 1.5}])
def test_schedule_rejects_bad_arguments(bad: dict) -> None:
    args = {"target": 0.5, "steps": 3, "schedule": "agp"} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        step_sparsities(**args)


def _masks_per_step(session: Session, **kwargs) -> list[dict[str, torch.Tensor]]:
    """Run prune_iteratively, catching each step's masks at its first fine-tuning step."""
    seen: list[dict[str, torch.Tensor]] = []

    def on_event(event: object) -> None:
        if isinstance(event, StepEvent) and (not seen or seen[-1] is not session.slot.masks):
            seen.append(session.slot.masks)

    session.prune_iteratively(on_event=on_event, **kwargs)
    return seen


@pytest.mark.parametrize("kwargs", [
    {"target": 0.9, "steps": 4, "schedule": "linear"},
    {"target": 0.8, "steps": 3, "schedule": "agp", "scope": "global"},
    {"target": 0.6, "steps": 3, "schedule": "oneshot"},
    {"target": 0.7, "steps": 3, "schedule": "linear", "structured": True, "norm": "l2"}])
def test_masks_never_unprune_across_steps(kwargs: dict) -> None:
    """Each step's mask contains the previous one's; sparsity hits each s_k exactly."""
    session = Session("digits", "mlp")
    masks = _masks_per_step(session, finetune_epochs=1, **kwargs)
    assert len(masks) == kwargs["steps"]
    for earlier, later in zip(masks, masks[1:]):
        for name, mask in earlier.items():
            assert not (later[name] & ~mask).any(), name  # nothing pruned comes back
    steps = [h for h in session.history if h["kind"] == "prune_step"]
    assert [h["k"] for h in steps] == list(range(1, kwargs["steps"] + 1))
    expected = step_sparsities(kwargs["target"], kwargs["steps"], kwargs["schedule"])
    assert [h["sparsity"] for h in steps] == expected
    if not kwargs.get("structured") and kwargs.get("scope") != "global":
        for h, s_k in zip(steps, expected):
            for layer in h["snapshot"].layers:
                assert layer.numel - layer.nonzero == round(s_k * layer.numel)
    for name, tensor in session.model.named_parameters():
        if name in session.slot.masks:  # pruned weights stayed exactly zero through fine-tuning
            assert not tensor[~session.slot.masks[name]].any(), name


def test_rewind_init_restores_exact_initial_values_of_survivors() -> None:
    """rewind="init": survivors equal the weights at construction, bit for bit."""
    session = Session("digits", "mlp", pretrained=False, seed=7)
    initial = _clone(session.model.state_dict())
    session.train(epochs=2)
    session.prune_iteratively(0.75, steps=2, schedule="linear", finetune_epochs=0,
                              rewind="init")
    masks = session.slot.masks
    for name, tensor in session.model.state_dict().items():
        if name in masks:
            assert torch.equal(tensor[masks[name]], initial[name][masks[name]]), name
            assert not tensor[~masks[name]].any()
        else:
            assert torch.equal(tensor, initial[name]), name


def test_rewind_to_epoch_k_and_bad_rewind_changes_nothing() -> None:
    """rewind=k uses the weights after k epochs; an unknown k raises before any change."""
    session = Session("digits", "mlp", pretrained=False, seed=1)
    session.train(epochs=3)
    assert sorted(session.slot.rewind_states) == [1, 2, 3]
    after_2 = session.slot.rewind_states[2]
    assert not torch.equal(after_2["layers.0.weight"], session.slot.initial["layers.0.weight"])
    before = _clone(session.model.state_dict())
    with pytest.raises(ValueError, match="rewind"):
        session.prune_iteratively(0.5, steps=2, rewind=9)
    for name, tensor in session.model.state_dict().items():
        assert torch.equal(tensor, before[name])
    session.prune_iteratively(0.5, steps=1, finetune_epochs=0, rewind=2)
    mask = session.slot.masks["layers.1.weight"]
    assert torch.equal(session.model.layers[1].weight[mask], after_2["layers.1.weight"][mask])
    session.reset()  # reset returns to the original model, dense
    assert session.slot.masks is None and not session.slot.undo_stack


def test_slider_after_iterative_still_rebuilds_from_the_base() -> None:
    """After an iterative run the slider rebuilds masks from the base; undo works."""
    session = Session("digits", "mlp")
    session.prune_iteratively(0.8, steps=2, schedule="agp", finetune_epochs=1)
    assert len(session.slot.undo_stack) == 2
    snap = session.prune(sparsity=0.1)
    assert snap.sparsity == pytest.approx(0.1, abs=1e-4)
    session.undo()
    session.undo()  # the dense base before the first fine-tune, with step 1's masks
    assert session.slot.prune_config.sparsity < 0.8
    original = session.slot.original
    for name, tensor in session.slot.base.items():
        assert torch.equal(tensor, original[name])
    session.reset_pruning()
    for name, tensor in session.model.state_dict().items():
        assert torch.equal(tensor, original[name])


@pytest.mark.slow
def test_lenet300_mnist_agp_90_percent_keeps_accuracy() -> None:
    """LeNet-300-100 on mnist-5k at 90% sparsity (AGP, 3 steps, fine-tuned) stays within
    1.5 points of its dense validation accuracy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # seeded numbers depend on the thread count
    try:
        session = Session("mnist-5k", "lenet300", seed=0)
        dense = session.train(epochs=10, lr=1e-3).accuracy
        final = session.prune_iteratively(0.9, steps=3, schedule="agp", finetune_epochs=3,
                                          lr=1e-3)
    finally:
        torch.set_num_threads(threads)
    assert dense > 0.9
    assert final.sparsity == pytest.approx(0.9, abs=1e-4)
    assert final.accuracy >= dense - 0.015, (dense, final.accuracy)
