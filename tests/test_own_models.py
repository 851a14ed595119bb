"""Your own models, masks and session files checked at load (issue 26, item 9).

A mask on a bias is refused (biases are not pruned), a negative BatchNorm variance and
weights too large to bin are refused naming the layer, wherever a model comes in: a
module given to Session, a session file, an hf: folder.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer import Session
from explorer.validate import check_weights


def small_bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Linear(32, 10))


def test_mask_on_a_bias_is_refused_by_name():
    """install_masks names the bias and says why; the session is unchanged."""
    s = Session("digits", "mlp", device="cpu")
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    bias = "layers.0.bias"
    with pytest.raises(ValueError, match=r"'layers\.0\.bias' is refused: biases are not pruned"):
        s.pruning.install_masks({bias: torch.zeros_like(s.slot.base[bias], dtype=torch.bool)})
    assert s.slot.masks is None
    assert all(torch.equal(v, before[k]) for k, v in s.model.state_dict().items())


def test_session_file_with_a_bias_mask_is_refused(tmp_path):
    """An unstructured session's file with a mask on a bias does not load; structured
    masks (which cover biases of removed neurons) still round-trip."""
    s = Session("digits", "mlp", device="cpu")
    s.prune(sparsity=0.5)
    s.slot.masks["layers.1.bias"] = torch.ones_like(s.slot.base["layers.1.bias"], dtype=torch.bool)
    s.save(tmp_path / "bias.pt")
    with pytest.raises(ValueError, match=r"bias\.pt.*'layers\.1\.bias' is refused: biases"):
        Session.load(tmp_path / "bias.pt")
    s = Session("digits", "mlp", device="cpu")
    s.prune(sparsity=0.5, structured=True)
    assert any(n.endswith("bias") for n in s.slot.masks)
    s.save(tmp_path / "structured.pt")
    loaded = Session.load(tmp_path / "structured.pt")
    assert set(loaded.slot.masks) == set(s.slot.masks)


def test_negative_batchnorm_variance_is_refused_naming_the_layer():
    """A module whose BatchNorm holds a negative running variance does not load."""
    model = small_bn_model()
    with torch.no_grad():
        model[2].running_var[3] = -0.5
    with pytest.raises(ValueError, match=r"BatchNorm layer '2' has a negative running "
                                         r"variance \(-0\.5\)"):
        Session("digits", model)


def test_huge_weights_are_refused_naming_the_layer_and_value():
    """3e38 used to fail inside torch.histc ("range of [-nan, -nan]"); now the load says
    which layer and which value."""
    model = small_bn_model()
    with torch.no_grad():
        model[4].weight[1, 2] = -3e38
    with pytest.raises(ValueError, match=r"layer '4' holds a weight of 3e\+38 \(4\.weight\)"):
        Session("digits", model)
    with torch.no_grad():
        model[4].weight[1, 2] = 1e5  # large but sane: loads
    Session("digits", model)


def test_session_file_with_huge_weights_is_refused(tmp_path):
    """The same check runs on every state a session file holds."""
    s = Session("digits", "mlp", device="cpu")
    with torch.no_grad():
        s.slot.base["layers.2.weight"][0, 0] = 1e30
    s.save(tmp_path / "huge.pt")
    with pytest.raises(ValueError, match=r"huge\.pt is refused: slot teacher base: layer "
                                         r"'layers\.2' holds a weight of 1e\+30"):
        Session.load(tmp_path / "huge.pt")


def test_check_weights_leaves_other_buffers_alone():
    """A float buffer that is not a BatchNorm statistic (an attention mask of -inf) is
    not a weight; NaN in a parameter is refused."""
    state = {"attn.mask": torch.tensor([0.0, float("-inf")]), "fc.weight": torch.ones(2)}
    check_weights("m", state, ["fc.weight"])
    check_weights("m", state)  # keys ending in .weight / .bias count as parameters
    state["fc.weight"] = torch.tensor([1.0, float("nan")])
    with pytest.raises(ValueError, match=r"m: fc\.weight holds 1 NaN or infinite values"):
        check_weights("m", state)


@pytest.mark.slow
def test_hf_folder_with_a_negative_variance_is_refused(tmp_path):
    """hf:PATH goes through the same check (a transformers ResNet's BatchNorm)."""
    pytest.importorskip("transformers")
    pytest.importorskip("torch_pruning")
    from hf_util import digits_folder, tiny

    model = tiny("resnet", 3)
    bn = next(n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d))
    with torch.no_grad():
        model.get_submodule(bn).running_var[0] = -1.0
    model.save_pretrained(tmp_path / "bad")
    folder = digits_folder(tmp_path / "img", per_class=5, classes=3)
    with pytest.raises(ValueError, match=rf"bad.*BatchNorm layer '.*{bn}' has a negative"):
        Session(f"imagefolder:{folder}", f"hf:{tmp_path / 'bad'}")
