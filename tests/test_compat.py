"""explorer.compat: every canary passes on the installed libraries, and each one fails
loudly against a deliberately broken stand-in of the internal it checks, naming the
library, its installed version and the missing piece. The room refuses to start on a
required canary's failure and starts without an optional patch, saying so."""

from __future__ import annotations

import logging

import pytest

from explorer import compat
from explorer.compat import CompatError, installed
from explorer.compat import anywidget as c_anywidget
from explorer.compat import plotly as c_plotly
from explorer.compat import torch_ao as c_torch_ao
from explorer.compat import voila as c_voila


def test_every_canary_passes_on_the_installed_libraries():
    assert compat.run_canaries() == []


def break_handlers(mp, tmp_path):
    import voila.app

    mp.setattr(voila.app, "KernelHandler", type("KernelHandler", (), {}))
    return "jupyter_server", "KernelHandler in Voila.init_handlers()"


def break_start(mp, tmp_path):
    from voila.app import Voila

    def start(self):
        settings = self.init_settings()
        self.app = make_app(**settings)  # noqa: F821 - never run
        self.listen()
    mp.setattr(Voila, "start", start)
    return "voila", "Voila.start"


def break_pool(mp, tmp_path):
    import voila.voila_kernel_manager as vkm

    def voila_kernel_manager_factory(base, preheat, default_pool_size, page_config_hook):
        """Renamed refill: def refill_pool(self): pass"""
    mp.setattr(vkm, "voila_kernel_manager_factory", voila_kernel_manager_factory)
    return "voila", "fill_if_needed"


def break_ready_timer(mp, tmp_path):
    bundle = tmp_path / "labextension" / "static" / "main.js"
    bundle.parent.mkdir(parents=True)
    bundle.write_text("const s = AbortSignal.timeout(5000);", encoding="utf-8")
    mp.setattr(c_anywidget, "bundles", lambda: [bundle])
    return "anywidget", "AbortSignal.timeout(2000)"


def break_lean_import(mp, tmp_path):
    source = c_plotly._module_source
    mp.setattr(c_plotly, "_module_source", lambda name: "import json\n"
               if name == "plotly.io._renderers" else source(name))
    return "plotly", "plotly.io._renderers.nbformat"


def break_validators(mp, tmp_path):
    from plotly.validator_cache import ValidatorCache

    def get_validator(parent_path, prop_name):
        return ValidatorCache._json_cache[f"{parent_path}.{prop_name}"]
    mp.setattr(ValidatorCache, "get_validator", staticmethod(get_validator))
    return "plotly", "ValidatorCache.get_validator reading _json_cache only by .get()"


def break_restyle(mp, tmp_path):
    from plotly.basedatatypes import BaseFigure

    mp.delattr(BaseFigure, "_restyle_child")
    return "plotly", "BaseFigure._restyle_child"


def break_widget_fields(mp, tmp_path):
    import plotly.graph_objects as go

    traits = go.FigureWidget.class_traits()
    traits.pop("_widget_data")
    mp.setattr(go.FigureWidget, "class_traits", classmethod(lambda cls: traits))
    return "plotly", "FigureWidget trait _widget_data"


def break_int8(mp, tmp_path):
    import torch

    mp.delattr(torch.ao.quantization, "quantize_dynamic")
    return "torch", "torch.ao.quantization.quantize_dynamic"


def break_widget_module(mp, tmp_path):
    bundle = tmp_path / "widgetbundle.js"  # a bundle whose module's default is an object
    bundle.write_text(c_plotly.widget_bundle().read_text()[:-4000] +
                      "var j=1;export{j as default};")
    mp.setattr(c_plotly, "widget_bundle", lambda: bundle)
    return "plotly", "the widget module's default export"


def break_cartesian_bundle(mp, tmp_path):
    (tmp_path / "manifest.json").write_text('{"plotly": "6.0.0"}')  # built from another
    mp.setattr(c_plotly, "cartesian_dir", lambda: tmp_path)
    return "plotly", "the plotly version the cartesian bundle was built from (6.0.0)"


def test_the_room_serves_the_cartesian_bundle_only_to_its_own_plotly(monkeypatch, tmp_path):
    assert c_plotly.served_widget_bundle().name == "widgetbundle-cartesian.js"
    break_cartesian_bundle(monkeypatch, tmp_path)
    assert c_plotly.served_widget_bundle() == c_plotly.widget_bundle()


BREAKERS = {
    c_voila.check_handlers: break_handlers,
    c_voila.check_start: break_start,
    c_voila.check_pool: break_pool,
    c_anywidget.check_ready_timer: break_ready_timer,
    c_plotly.check_lean_import: break_lean_import,
    c_plotly.check_validators: break_validators,
    c_plotly.check_restyle: break_restyle,
    c_plotly.check_widget_fields: break_widget_fields,
    c_torch_ao.check_dynamic: break_int8,
    c_plotly.check_widget_module: break_widget_module,
    c_plotly.check_cartesian_bundle: break_cartesian_bundle,
}


def test_every_canary_has_a_broken_stand_in():
    assert {c.check for c in compat.canaries()} == set(BREAKERS)


@pytest.mark.parametrize("check", list(BREAKERS), ids=lambda f: f.__name__)
def test_a_canary_fails_loudly_against_a_broken_stand_in(check, monkeypatch, tmp_path):
    library, piece = BREAKERS[check](monkeypatch, tmp_path)
    with pytest.raises(CompatError) as caught:
        check()
    message = str(caught.value)
    assert message.startswith(f"{library} {installed(library)}: "), message
    assert piece in message, message
    assert "was written against" in message


def test_replace_handlers_refuses_when_a_class_is_not_found():
    class Page:
        pass

    class Ours:
        pass

    class Gone:
        pass

    specs = [("/a", Page, {"x": 1}), ("/b", Page)]
    assert c_voila.replace_handlers(specs, {Page: Ours}) == [("/a", Ours, {"x": 1}),
                                                              ("/b", Ours)]
    with pytest.raises(CompatError, match=r"voila .*Gone in Voila.init_handlers\(\)"):
        c_voila.replace_handlers(specs, {Page: Ours, Gone: Ours})


def test_wait_script_widens_only_the_ready_timer():
    script = c_anywidget.wait_script(90_000)
    assert "ms === 2000 ? 90000 : ms" in script


def room_app():
    from explorer.cli.room import ExplorerVoila

    return ExplorerVoila()


def failing(check_name: str):
    canary = next(c for c in compat.canaries() if c.check.__name__ == check_name)
    return [(canary, CompatError(f"{canary.distribution} x: {canary.piece} is missing"))]


def test_the_room_refuses_to_start_without_its_visitor_check(monkeypatch):
    import explorer.cli.room as room

    monkeypatch.setattr(room, "run_canaries", lambda: failing("check_handlers"))
    with pytest.raises(CompatError, match="the room cannot start: voila"):
        room_app().check_patches()


def test_the_room_starts_without_the_longer_timer_and_says_so(monkeypatch, caplog):
    import explorer.cli.room as room

    app = room_app()
    assert app.check_patches() == c_anywidget.wait_script()  # all canaries pass
    monkeypatch.setattr(room, "run_canaries", lambda: failing("check_ready_timer"))
    with caplog.at_level(logging.WARNING):
        app.log.propagate = True
        assert app.check_patches() == ""
    assert "starting without the room's longer widget ready timer" in caplog.text
