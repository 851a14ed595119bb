"""Oracle: the dependency graph couples the zoo's channels as the hand-written groups do."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_pruning")

from explorer.engine.attention import graph_of  # noqa: E402
from explorer.engine.graph import graph_masks  # noqa: E402
from explorer.engine.structure import model_groups, structured_masks  # noqa: E402
from explorer.models.zoo import build_model  # noqa: E402


def removed_rows(mask: torch.Tensor) -> torch.Tensor:
    """Output channels a mask removes whole (a row with no surviving entry)."""
    return ~mask.reshape(len(mask), -1).any(1) if mask.ndim > 1 else ~mask


@pytest.mark.parametrize("name", ["mlp", "lenet300", "lenet5", "resnet-small"])
@pytest.mark.parametrize("sparsity", [0.3, 0.5])
def test_graph_removes_the_channels_the_hand_written_groups_remove(name, sparsity):
    """Same L1 rule, same coupling: every producer loses the same channels either way."""
    model = build_model(name, (64,), 10, image_shape=(1, 8, 8), seed=1)
    params = {n: p.detach() for n, p in model.named_parameters()}
    hand = structured_masks(params, model_groups(model)[0], sparsity, "l1").masks
    last = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear,
                                                                    torch.nn.Conv2d))][-1]
    groups, _ = graph_of(model, torch.randn(2, 64), last)
    graph, _ = graph_masks(params, groups, sparsity, "l1")
    assert set(hand) <= set(graph)
    for pname, mask in hand.items():
        assert torch.equal(removed_rows(mask), removed_rows(graph[pname])), pname
