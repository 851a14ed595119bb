"""What saves loads (issue 26, item 6): Session.save and Session.load apply one parameter
cap, counted the same way; a model past it is refused by save before anything is written."""

from __future__ import annotations

import pytest
import torch

from explorer import Session
from explorer.config import MODEL_PARAMS_MAX
from explorer.session.loadshape import param_count

OLD_LOAD_CAP = 100_000_000  # what Session.load refused above before issue 26


@pytest.fixture(scope="module")
def session():
    return Session("digits", "mlp", device="cpu")


def test_save_refuses_past_the_cap_up_front_naming_it_and_the_option(session, tmp_path):
    """A cap one below the model: ValueError naming both numbers and the option, and no
    file (nor bytes) made."""
    n = param_count(session.model)
    path = tmp_path / "s.pt"
    for save in (lambda: session.save(path, max_params=n - 1),
                 lambda: session.to_bytes(max_params=n - 1)):
        with pytest.raises(ValueError) as err:
            save()
        text = str(err.value)
        assert f"teacher model has {n:,} parameters, past the limit of {n - 1:,}" in text
        assert "max_params=" in text and "--max-params" in text and "none of it" in text
    assert not path.exists()


def test_save_and_load_count_alike(session):
    """Oracle: the cap at which save just passes is the one at which load just passes."""
    n = param_count(session.model)
    data = session.to_bytes(max_params=n)
    assert param_count(Session.load(data, max_params=n).model) == n
    with pytest.raises(ValueError, match=f"past the limit of {n - 1:,}"):
        Session.load(data, max_params=n - 1)


def test_dashboard_max_params_reaches_the_kernels_cap(session, monkeypatch):
    """`explorer dashboard --max-params N` sets the kernels' variable; with it set, a load
    and a save that give no cap of their own (the app's Load and Save) use N; a bad value
    of the variable is a ValueError naming it."""
    from explorer.cli.main import build_parser, dashboard_env
    from explorer.config import MAX_PARAMS_ENV

    n = param_count(session.model)
    data = session.to_bytes()
    parser, _ = build_parser()
    args = parser.parse_args(["dashboard", "--max-params", str(n - 1)])
    env = dashboard_env(theme="light", talk=False, max_params=args.max_params)
    assert env[MAX_PARAMS_ENV] == str(n - 1)
    monkeypatch.setenv(MAX_PARAMS_ENV, env[MAX_PARAMS_ENV])
    with pytest.raises(ValueError, match=f"past the limit of {n - 1:,}"):
        Session.load(data)
    with pytest.raises(ValueError, match=f"past the limit of {n - 1:,}"):
        session.to_bytes()
    monkeypatch.setenv(MAX_PARAMS_ENV, str(n))
    assert param_count(Session.load(data).model) == n
    monkeypatch.setenv(MAX_PARAMS_ENV, "lots")
    with pytest.raises(ValueError, match=f"{MAX_PARAMS_ENV}='lots'"):
        Session.load(data)


@pytest.mark.slow  # a 100.8M-parameter MLP: 80-160 s and 4 GiB on a loaded 2-core machine
def test_a_model_over_the_old_load_cap_saves_and_loads(tmp_path):
    """106M-parameter sessions once saved and then failed to load (the loader's 100M cap):
    a 100.8M-parameter MLP saves and loads with the defaults, weights intact."""
    s = Session("digits", "mlp", hidden=(10000, 10000), pretrained=False, device="cpu")
    n = param_count(s.model)
    assert OLD_LOAD_CAP < n <= MODEL_PARAMS_MAX
    probe = s.model.state_dict()["layers.1.weight"][:3, :5].clone()
    s.save(tmp_path / "big.pt")
    del s
    back = Session.load(tmp_path / "big.pt")
    assert param_count(back.model) == n
    assert torch.equal(back.model.state_dict()["layers.1.weight"][:3, :5], probe)
