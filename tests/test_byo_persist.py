"""Session.save / Session.load on your own data and model (imagefolder: + hf:)."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch_pruning")

import torch  # noqa: E402
from hf_util import digits_folder, gpt2, saved  # noqa: E402

from explorer import Session  # noqa: E402


@pytest.fixture
def trained(tmp_path):
    """A tiny hf ResNet on a digits folder: one epoch, then 40% structured pruning."""
    data = digits_folder(tmp_path / "digits", per_class=30)
    model = saved("resnet", tmp_path, 10)
    s = Session(f"imagefolder:{data}", f"hf:{model}", seed=2)
    s.train(epochs=1, lr=3e-3)
    s.prune(sparsity=0.4, structured=True)
    return s, data, model


def test_round_trip_without_the_model_folder(trained, tmp_path):
    """Saved, the model folder deleted, loaded: the same weights, masks, undo, history and
    numbers; the architecture came from the config stored in the file."""
    s, data, model = trained
    s.save(tmp_path / "s.pt")
    shutil.rmtree(model)
    back = Session.load(tmp_path / "s.pt")
    assert back.slot.config == s.slot.config and back.slot.config["model"] == f"hf:{model}"
    for (k, v), (k2, v2) in zip(s.model.state_dict().items(),
                                back.model.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k
    assert back.slot.masks is not None and all(torch.equal(back.slot.masks[k], m)
                                          for k, m in s.slot.masks.items())
    assert len(back.slot.undo_stack) == len(s.slot.undo_stack)
    assert len(back.history) == len(s.history)
    a, b = s.snapshot(), back.snapshot()
    assert (a.accuracy, a.loss) == (b.accuracy, b.loss)
    small = back.shrink()  # the graph traces on the rebuilt model too
    x = back.data.val.x[:8]
    with torch.no_grad():
        torch.testing.assert_close(small.eval()(x), back.model.eval()(x), atol=1e-4,
                                   rtol=1e-4)
    back.undo()  # the pruned fine-tune's undo entry came back with the file
    assert back.slot.masks is None


def test_split_folder_tagged_test_is_val_round_trips(tmp_path):
    """PATH/train + PATH/val: the dataset name carries "(test = val)" and still reopens the
    folder on load; gone, the load names the folder without the tag."""
    digits_folder(tmp_path / "d" / "train", per_class=4, classes=3)
    digits_folder(tmp_path / "d" / "val", per_class=2, classes=3)
    s = Session(f"imagefolder:{tmp_path / 'd'}", f"hf:{saved('resnet', tmp_path, 3)}")
    assert s.slot.config["dataset"] == f"imagefolder:{tmp_path / 'd'} (test = val)"
    s.save(tmp_path / "s.pt")
    back = Session.load(tmp_path / "s.pt")
    assert back.slot.config["dataset"] == s.slot.config["dataset"]
    assert torch.equal(back.data.test.x, s.data.val.x)
    shutil.rmtree(tmp_path / "d")
    with pytest.raises(ValueError, match=f"data folder {tmp_path / 'd'} is gone: the"):
        Session.load(tmp_path / "s.pt")


def test_load_refuses_when_the_data_folder_is_gone(trained, tmp_path):
    s, data, _ = trained
    s.save(tmp_path / "s.pt")
    shutil.rmtree(data)
    with pytest.raises(ValueError, match=f"data folder {data} is gone"):
        Session.load(tmp_path / "s.pt")


def test_a_file_claiming_a_huge_hf_model_is_refused_before_building(trained, tmp_path):
    """The stored config is checked on `meta` against the parameter cap: a file that claims
    8192-wide stages (2.5B parameters) is refused by name, nothing allocated."""
    s, _, _ = trained
    s.save(tmp_path / "s.pt")
    payload = torch.load(tmp_path / "s.pt", weights_only=True)
    for config in (payload["config"], payload["slots"]["teacher"]["config"]):
        config["hf"]["config"].update(hidden_sizes=[8192, 8192], embedding_size=8192)
    torch.save(payload, tmp_path / "big.pt")
    with pytest.raises(ValueError, match="big.pt is refused.*past the limit"):
        Session.load(tmp_path / "big.pt")


def test_a_language_model_on_own_text_still_refuses_plainly(tmp_path):
    """hf: GPT-2 on a built-in corpus saves (test_lm_persist.py); on a user's text file
    (the session keeps its name only) the refusal says so and writes nothing."""
    text = tmp_path / "mine.txt"
    text.write_text("a small text of my own to model. " * 100)
    lm = Session(str(text), f"hf:{gpt2(tmp_path)}", max_train_windows=16)
    with pytest.raises(ValueError, match="language-model session.*none of it is written"):
        lm.save(tmp_path / "lm.pt")
    assert not (tmp_path / "lm.pt").exists()
