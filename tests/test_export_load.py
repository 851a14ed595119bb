"""The shrunk export loads back through one documented call (issue 28):
`explorer.load_exported(path)` rebuilds the model from the file alone, for an hf: model
(its transformers config, shrunk to the file's shapes) and a language model too, and the
loaded model answers as the session's pruned one."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("torch_pruning")

from hf_util import digits_folder, saved  # noqa: E402

import explorer  # noqa: E402


def _n(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kind", ["resnet", "bert"])
def test_documented_call_loads_an_hf_shrunk_export(tmp_path, kind):
    """As docs/own-model.md shows it: prune structurally, export shrunk, load_exported:
    fewer parameters, the masked model's outputs (1e-4), and the masked export too."""
    if kind == "resnet":
        data = f"imagefolder:{digits_folder(tmp_path / 'digits', per_class=6, size=8)}"
        s = explorer.Session(data, f"hf:{saved('resnet', tmp_path, 10)}", seed=0)
        x = s.data.val.x[:8]
    else:
        ids = torch.randint(1, 50, (32, 8), generator=torch.Generator().manual_seed(0))
        s = explorer.Session(model=f"hf:{saved('bert', tmp_path, 2)}",
                             train=(ids[:24], ids[:24, 0] > 25), val=(ids[24:], ids[24:, 0] > 25))
        x = s.data.val.x
    s.prune(sparsity=0.5, structured=True)
    payload = s.export(tmp_path / "small.pt", kind="shrunk")
    assert payload["arch"]["name"] == "hf"
    small = explorer.load_exported(tmp_path / "small.pt")
    with torch.no_grad():
        want = s.model.eval()(x)
        torch.testing.assert_close(small(x), want, atol=1e-4, rtol=1e-4)
    assert _n(small) < _n(s.model)
    s.export(tmp_path / "masked.pt", kind="masked")
    with torch.no_grad():
        torch.testing.assert_close(explorer.load_exported(tmp_path / "masked.pt")(x), want,
                                   atol=1e-5, rtol=1e-5)


def test_documented_call_loads_a_language_model_shrunk_export(tmp_path):
    """gpt-tiny's shrunk export (its GPT config and state) loads through the same call."""
    from explorer.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, context=8, n_layers=1, n_heads=2, d_model=8))
    model.remove_heads(0, [1])
    from explorer.session.language import export_shrunk

    export_shrunk(model, tmp_path / "lm.pt")
    loaded = explorer.load_exported(tmp_path / "lm.pt")
    ids = torch.randint(0, 20, (2, 8))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), model.eval()(ids))
    assert loaded.heads_per_layer() == [1]


def test_a_file_without_architecture_names_itself(tmp_path):
    torch.save({"format": 1, "kind": "zeros", "arch": None, "state_dict": {}},
               tmp_path / "x.pt")
    with pytest.raises(ValueError, match=r"x\.pt: no architecture stored"):
        explorer.load_exported(tmp_path / "x.pt")
