"""A visitor's session file reads only the folders the operator allows (issue 26, item 2).

The app's Load handler passes its data roots to Session.load: a file naming a folder
outside them (existing or not, or reached through a symlink inside a root) is refused with
one message before the folder is touched; a file naming a folder inside them loads.
"""

from __future__ import annotations

import io
import os

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from explorer.session.roots import (
    DATA_ROOTS_ENV,
    OUTSIDE,
    allowed_roots,
    check_roots,
    is_allowed,
    own_folders,
    roots_from_env,
)


def test_inside_a_root_means_below_it_not_a_prefix(tmp_path):
    """/data2 is not inside /data; '..' cannot climb out; relative paths are refused."""
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data2").mkdir()
    roots = allowed_roots([tmp_path / "data"])
    assert is_allowed(f"imagefolder:{tmp_path}/data/a", roots)
    assert is_allowed(f"hf:{tmp_path}/data", roots)
    assert is_allowed("digits", roots) and is_allowed("mlp", roots)
    for spec in (f"imagefolder:{tmp_path}/data2", f"imagefolder:{tmp_path}/data/../data2",
                 f"hf:{tmp_path}", "imagefolder:data/a", f"{tmp_path}/data2/t.txt",
                 f"hf:{tmp_path}/data/a\0", 3, ["x"]):
        assert not is_allowed(spec, roots), spec
    assert not is_allowed(f"imagefolder:{tmp_path}/data/a", ())


def test_a_symlink_inside_a_root_pointing_outside_is_refused(tmp_path):
    """Compared after resolving links: root/link -> /elsewhere is outside the root."""
    (tmp_path / "root").mkdir()
    (tmp_path / "secret").mkdir()
    os.symlink(tmp_path / "secret", tmp_path / "root" / "link")
    roots = allowed_roots([tmp_path / "root"])
    assert not is_allowed(f"imagefolder:{tmp_path}/root/link", roots)
    assert not is_allowed(f"imagefolder:{tmp_path}/root/link/sub", roots)
    # a root given through a link is resolved, so its own files stay allowed
    os.symlink(tmp_path / "root", tmp_path / "alias")
    assert is_allowed(f"imagefolder:{tmp_path}/root/x", allowed_roots([tmp_path / "alias"]))


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "a2"]), max_size=6))
def test_any_path_allowed_resolves_inside_the_root(parts):
    """Property: whatever a file writes, an allowed path is below the root once resolved."""
    root = "/srv/explorer-roots-test/a"
    path = "/srv/explorer-roots-test/a/" + "/".join(parts)
    if is_allowed(f"imagefolder:{path}", (root,)):
        real = os.path.realpath(path)
        assert real == root or real.startswith(root + "/")


def test_every_config_in_the_file_is_checked():
    """The file's config, each slot's config and model name: one outside path refuses."""
    inside = {"dataset": "imagefolder:/r/d", "model": "hf:/r/m"}
    payload = {"config": dict(inside), "slots": {"teacher": {"config": dict(inside),
                                                             "model_name": "hf:/r/m"}}}
    check_roots(payload, ("/r",), "f.pt")
    for where in ("config", "slot", "name"):
        bad = {"config": dict(inside), "slots": {"teacher": {"config": dict(inside),
                                                             "model_name": "hf:/r/m"}}}
        target = bad["config"] if where == "config" else bad["slots"]["teacher"]
        if where == "slot":
            target = target["config"]
        target["model_name" if where == "name" else "dataset"] = "imagefolder:/etc"
        with pytest.raises(ValueError) as err:
            check_roots(bad, ("/r",), "f.pt")
        assert str(err.value) == f"f.pt is refused: {OUTSIDE}"


def test_roots_travel_through_the_environment(tmp_path, monkeypatch):
    """The dashboard's --data-root (default: its --dataset/--model folders) reaches the
    kernels resolved; a --data-root that is not a folder exits 2 naming it."""
    from explorer.cli.dashboard_args import data_roots
    from explorer.cli.main import build_parser, dashboard_env

    (tmp_path / "d").mkdir()
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path)
    parser, _ = build_parser()
    args = parser.parse_args(["dashboard", "--dataset", "imagefolder:d", "--model", "hf:m"])
    env = dashboard_env(theme="light", talk=False, data_roots=data_roots(args))
    assert roots_from_env(env) == (str(tmp_path / "d"), str(tmp_path / "m"))
    args = parser.parse_args(["dashboard", "--data-root", str(tmp_path)])
    assert roots_from_env(dashboard_env(theme="light", talk=False,
                                        data_roots=data_roots(args))) == (str(tmp_path),)
    assert roots_from_env(dashboard_env(theme="light", talk=False)) == ()  # zoo only
    with pytest.raises(ValueError, match="'nope' is not a folder"):
        data_roots(parser.parse_args(["dashboard", "--data-root", "nope"]))
    monkeypatch.setenv(DATA_ROOTS_ENV, os.pathsep.join([str(tmp_path / "d"), ""]))
    assert roots_from_env() == (str(tmp_path / "d"),)
    assert own_folders({"dataset": "digits", "model": f"hf:{tmp_path}/m"}) == \
        (str(tmp_path / "m"),)


# ----- through the app's Load handler -------------------------------------------------------
@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A root holding a digits folder and a tiny hf ResNet; a twin folder outside it, a
    link inside the root to that twin; a session saved on the root's folder."""
    pytest.importorskip("transformers")
    pytest.importorskip("torch_pruning")
    from hf_util import digits_folder, saved

    from explorer import Session

    base = tmp_path_factory.mktemp("roots")
    root = base / "root"
    data = digits_folder(root / "digits", per_class=6, classes=3)
    outside = digits_folder(base / "private", per_class=6, classes=3)
    os.symlink(outside, root / "link")
    model = saved("resnet", root, 3)
    session = Session(f"imagefolder:{data}", f"hf:{model}", device="cpu")
    return root, data, outside, session.to_bytes()


def with_dataset(data: bytes, folder: str) -> bytes:
    """The saved file with its data set (file and slot configs) pointed at `folder`."""
    payload = torch.load(io.BytesIO(data), weights_only=True)
    for config in (payload["config"], *(s["config"] for s in payload["slots"].values())):
        config["dataset"] = f"imagefolder:{folder}"
    out = io.BytesIO()
    torch.save(payload, out)
    return out.getvalue()


def test_the_load_handler_refuses_folders_outside_the_roots_alike(folders):
    """Existing, missing and linked-out folders get the same message; the session in use
    stays; the same file naming the root's own folder loads."""
    from explorer import Session
    from explorer.ui import ExplorerApp

    root, data, outside, saved = folders
    app = ExplorerApp(Session("digits", "mlp", device="cpu"), data_roots=[root])
    try:
        files, before = app.model_panel.files, app.session
        messages = set()
        for folder in (outside, f"{outside}-missing", root / "link", "/etc"):
            assert not files.load_bytes(with_dataset(saved, str(folder)), "crafted.pt")
            messages.add(app.c.status.value)
            assert app.session is before
        assert len(messages) == 1, messages
        (message,) = messages
        assert OUTSIDE.split("(")[0].strip() in message and "private" not in message
        assert files.load_bytes(saved, "mine.pt"), app.c.status.value
        assert app.session.slot.config["dataset"] == f"imagefolder:{data}"
    finally:
        app.jobs.stop()
        app.jobs.wait(60)


def test_session_load_from_python_reads_any_folder_it_names(folders):
    """The operator's own Session.load is not fenced: the twin outside the root loads."""
    from explorer import Session

    _, _, outside, saved = folders
    loaded = Session.load(with_dataset(saved, str(outside)), device="cpu")
    assert loaded.slot.config["dataset"] == f"imagefolder:{outside}"
