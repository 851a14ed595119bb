"""The room's lean page and kernels: plotly's widget module by URL, kernels without debugpy.

In the room, figures carry a short module that imports plotly's widget bundle from
the server (explorer.ui.served), instead of each figure sending it through the kernel; the
room's kernels start through explorer.cli.room_kernel. Elsewhere nothing changes. (That the
figures still draw and follow the slider is checked by the room's browser tests.)
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import urllib.request

import plotly.graph_objects as go
import pytest
from test_sharing import ROOM_TOKEN, Visitor, kernels, room  # noqa: F401  (room: a fixture)

from explorer.cli.room_kernel import NO_HISTORY, lean_argv
from explorer.cli.room_pages import plotly_module_path, served_bundle
from explorer.config import PLOTLY_MODULE_ENV
from explorer.ui.served import BASE_URL_ENV, figure_widget


def test_figures_are_plotlys_own_outside_the_room(monkeypatch):
    monkeypatch.delenv(PLOTLY_MODULE_ENV, raising=False)
    fig = figure_widget()
    assert type(fig).__name__ == "FigureWidget"  # not the room's ServedFigureWidget
    assert len(fig._esm) > 1_000_000  # the whole bundle, as plotly sends it


def test_figures_in_the_room_import_the_bundle_from_the_server(monkeypatch):
    monkeypatch.setenv(PLOTLY_MODULE_ENV, plotly_module_path())
    monkeypatch.setenv(BASE_URL_ENV, "/class/")
    fig = figure_widget(layout={"title": {"text": "t"}})
    assert isinstance(fig, go.FigureWidget) and fig.layout.title.text == "t"
    # a small wrapper (it asks the kernel for the figure's whole state once the view
    # listens: explorer.ui.served) that imports the served bundle; plotly's is megabytes
    assert len(fig._esm) < 4_000, fig._esm
    assert json.dumps("/class/" + plotly_module_path()) in fig._esm
    assert "export default" in fig._esm


def test_the_room_kernel_is_ipykernel_without_debugger_or_history():
    argv = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert lean_argv(argv) == ["python", "-m", "explorer.cli.room_kernel", "-f",
                               "{connection_file}", NO_HISTORY]
    other = ["/opt/julia", "kernel.jl", "{connection_file}"]
    assert lean_argv(other) == other
    probe = ("import sys; sys.modules['debugpy'] = None\n"
             "from ipykernel.debugger import _is_debugpy_available; print(_is_debugpy_available)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow
def test_the_room_serves_the_bundle_and_runs_lean_kernels(room):  # noqa: F811
    url, proc = room
    visitor = Visitor(url, ROOM_TOKEN)
    status, _page = visitor.get()
    assert status == 200
    with urllib.request.urlopen(url + plotly_module_path(), timeout=60) as response:
        body = response.read()
        assert "javascript" in response.headers["Content-Type"]
        assert "max-age" in response.headers.get("Cache-Control", "")
    assert body == served_bundle().read_bytes()  # plotly's, or its cartesian build
    asked = urllib.request.Request(url + plotly_module_path(),
                                   headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(asked, timeout=60) as response:  # what a browser asks
        assert response.headers.get("Content-Encoding") == "gzip"
        packed = response.read()
    assert gzip.decompress(packed) == body and len(packed) < len(body) / 2
    lines = [" ".join(k.cmdline()) for k in kernels(proc)]
    assert lines and all("explorer.cli.room_kernel" in line for line in lines), lines


PROBE = """
import json, os, sys
from explorer.cli.room_pages import used_validators_file
os.environ["EXPLORER_PLOTLY_VALIDATORS"] = str(used_validators_file())
os.environ["EXPLORER_PLOTLY_MODULE"] = "explorer/static/plotly/widgetbundle.js"  # a room kernel
import plotly.graph_objects as go
from explorer.ui.plots import main_figure
from explorer.ui.theme import get_theme
from plotly.validator_cache import ValidatorCache
fig = main_figure(get_theme("light"))
table = ValidatorCache._json_cache
out = {"kind": type(table).__name__, "complete_after_app": table.complete, "size": len(table)}
pie = go.FigureWidget(go.Pie(values=[1, 2]))
out["complete_after_pie"] = table.complete
out["pie_values"] = list(pie.data[0]["values"])
print(json.dumps(out))
"""


def test_room_kernels_read_only_the_validators_the_app_uses():
    """The app's figures build from the trimmed validator table; a trace outside it still
    works (the whole table is then read)."""
    import json

    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert found["kind"] == "UsedValidators"
    assert found["complete_after_app"] is False and found["size"] < 4000
    assert found["complete_after_pie"] is True and found["pie_values"] == [1, 2]
