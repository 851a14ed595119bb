"""Where the dependency graph cannot handle a user's module, the structured prune or the
shrink refuses with a ValueError naming the layer and the reason, and the session is
left as it was (issue 18)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("torch_pruning")

from explorer import Session  # noqa: E402


class Doubler(torch.autograd.Function):
    """A custom op: the graph sees an opaque node and cannot know its channel mapping."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return x * 2

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return grad * 2


class CustomOpNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(16, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(Doubler.apply(torch.relu(self.fc1(x))))


class HardCodedView(nn.Module):
    """Its forward flattens to a fixed width (4 channels x 4 x 4): fine until channels go."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x.view(len(x), 1, 4, 4)))
        return self.fc(h.view(-1, 64))


def session_of(model: nn.Module) -> Session:
    torch.manual_seed(0)
    x, y = torch.randn(16, 16), torch.arange(16) % 2
    return Session(model=model, train=(x, y), val=(x, y))


def state_of(session: Session) -> tuple:
    return ({k: v.clone() for k, v in session.model.state_dict().items()},
            session.slot.masks, session.slot.prune_config)


def assert_unchanged(session: Session, before: tuple) -> None:
    state, masks, config = before
    for name, tensor in session.model.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    assert session.slot.masks is masks and session.slot.prune_config == config


def test_a_custom_op_is_refused_at_the_structured_prune_by_layer():
    session = session_of(CustomOpNet())
    session.prune(sparsity=0.3)  # unstructured pruning needs no graph
    before = state_of(session)
    with pytest.raises(ValueError, match=r"'fc1'.*custom autograd function DoublerBackward"):
        session.prune(sparsity=0.5, structured=True)
    assert_unchanged(session, before)
    with pytest.raises(ValueError, match="'fc1'"):
        session.prune_iteratively(0.5, steps=2, finetune_epochs=0, structured=True)
    assert_unchanged(session, before)
    session.prune_iteratively(0.5, steps=2, finetune_epochs=0)  # unstructured: no graph


def test_a_forward_that_hard_codes_a_width_is_refused_at_the_shrink_by_layer(tmp_path):
    session = session_of(HardCodedView())
    session.prune(sparsity=0.5, structured=True)  # masks are fine: no shape changes
    assert int((session.model.conv.weight.flatten(1).abs().sum(1) == 0).sum()) == 2
    before = state_of(session)
    with pytest.raises(ValueError, match=r"in layer 'fc' \(Linear\).*hard-code a width"):
        session.shrink()
    with pytest.raises(ValueError, match="'fc'"):
        session.export(tmp_path / "small.pt", kind="shrunk")
    assert not (tmp_path / "small.pt").exists()
    assert_unchanged(session, before)
    session.snapshot()  # the effective-FLOPs readout falls back to densities, no raise


def test_a_forward_the_graph_cannot_run_is_refused_by_layer():
    """The example the session gives is traced; a layer that fails names itself."""
    from explorer.engine.tracing import build_graph

    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(7, 2))
    with pytest.raises(ValueError, match=r"in layer '2' \(Linear\)"):
        build_graph(model, torch.randn(2, 16))
