"""Issue 15, item 2: the front end's answer to every figure update must not break the figure.

After each update plotly's front end sends the trace and layout properties where its full
data differs from the widget's data (`createDeltaObject` in plotly's widget JavaScript). A
NumPy array travels as a typed array, and a typed array that differs comes back as an
object of indices; plotly's handler (`_remove_overlapping_props`) then tests `if not
value` on the array, raises, and leaves its edit-in-process flag set, after which the
figure waits forever: bars and histogram froze while the header still followed the
slider. `js_delta` below is a port of that JavaScript, so these tests feed the figure
exactly what a browser sends.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from explorer.ui import ExplorerApp


def _is_object(value) -> bool:  # JavaScript: typeof value == "object" (not null)
    return isinstance(value, (dict, list, tuple, np.ndarray))


def _is_array(value) -> bool:  # Array.isArray: lists are arrays, typed arrays are not
    return isinstance(value, (list, tuple))


def _get(container, key):
    if isinstance(container, dict):
        return container.get(key)
    if isinstance(container, (list, tuple, np.ndarray)):
        index = int(key)
        return container[index] if index < len(container) else None
    return None


def _has(container, key) -> bool:
    if isinstance(container, dict):
        return key in container
    if isinstance(container, (list, tuple, np.ndarray)):
        return int(key) < len(container)
    return False


def _equal(a, b) -> bool:  # lodash isEqual
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and \
            a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if _is_array(a) and _is_array(b):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def js_delta(full, data):
    """Port of plotly's widget `createDeltaObject(fullObj, dataObj)`."""
    out = [None] * len(full) if _is_array(full) else {}
    data = {} if data is None else data
    keys = [str(i) for i in range(len(full))] if isinstance(full, (list, tuple, np.ndarray)) \
        else list(full)
    for key in keys:
        value = _get(full, key)
        if key.startswith("_") or value is None:
            continue
        if _equal(value, _get(data, key)) and key != "uid":
            continue
        if _has(data, key) and _is_object(value):
            if _is_array(value):
                if len(value) and _is_object(value[0]):
                    item = [value[i] if not _is_array(_get(data, key)) or
                            len(_get(data, key)) <= i else js_delta(value[i], _get(data, key)[i])
                            for i in range(len(value))]
                else:
                    item = list(value)
            else:  # an object, or a typed array: an object of its differing indices
                item = js_delta(value, _get(data, key))
                if not item:
                    continue
        elif isinstance(value, dict):
            item = js_delta(value, {})
        else:
            item = value.tolist() if isinstance(value, np.ndarray) else value
        if isinstance(out, list):
            out[int(key)] = item
        else:
            out[key] = item
    return out


def send_front_end_deltas(fig) -> None:
    """What the browser answers after an update: a delta per trace and one for the layout."""
    deltas = [js_delta(dict(full), dict(shown)) for full, shown in
              zip(fig._data, fig._widget_data)]
    fig._js2py_traceDeltas = {"trace_deltas": deltas, "trace_edit_id": fig._last_trace_edit_id}
    fig._js2py_layoutDelta = {"layout_delta": js_delta(fig._layout, fig._widget_layout),
                              "layout_edit_id": fig._last_layout_edit_id}


def test_the_port_reports_a_changed_typed_array_as_an_object_of_indices():
    """The shape of the message that used to break the figure."""
    delta = js_delta({"uid": "u", "y": np.array([1, 5, 3], dtype=np.int32)},
                     {"uid": "u", "y": np.array([1, 2, 3], dtype=np.int32)})
    assert delta == {"uid": "u", "y": {"1": 5}}
    assert js_delta({"uid": "u", "y": [1, 5]}, {"uid": "u", "y": [1, 2]}) == \
        {"uid": "u", "y": [1, 5]}


def test_slider_moves_survive_the_front_ends_answers(digits_app):
    """Every figure takes the front end's deltas after each move, and keeps updating."""
    app: ExplorerApp = digits_app
    app.tabs.selected_index = 1  # the distillation figure exists
    app.tabs.selected_index = 2  # and the Compare figures
    app._repr_mimebundle_()  # the page draws the app: _widget_data is what it starts from
    for value in (0.3, 0.6, 0.9):
        app.c.slider.value = value
        app.distill.temperature.value = 2 + value
        for fig in app.figures():
            send_front_end_deltas(fig)  # raised ValueError here when arrays were sent
            assert not fig._trace_edit_in_process and not fig._layout_edit_in_process
            assert not fig._waiting_edit_callbacks
        assert app.snap.sparsity == pytest.approx(value, abs=1e-3)
    app.c.layer.value = app.session.slot.prunable[1]
    send_front_end_deltas(app.fig)
    with mock.patch.object(app.fig, "_send_update_msg") as sent:
        app.c.slider.value = 0.2  # the figure still sends its updates (it froze before)
    assert sent.call_count == 1
    assert not app.errors.errors


def test_no_numpy_array_is_left_in_any_trace_or_layout(digits_app):
    """Plain values everywhere, at any depth: nothing for the handler to choke on."""
    app: ExplorerApp = digits_app
    app.tabs.selected_index = 1
    app.tabs.selected_index = 2
    app.c.slider.value = 0.5
    app.compare.run_sweep()

    def arrays(value, path=()):
        if isinstance(value, np.ndarray):
            yield path
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from arrays(v, (*path, k))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                yield from arrays(v, (*path, i))

    for fig in app.figures():
        found = [p for t in fig._data for p in arrays(t)] + list(arrays(fig._layout))
        assert not found, found


@pytest.mark.parametrize("grid", [[[7, 8], [9, 10]], [[0] * 48 for _ in range(48)]])
def test_an_unchecked_edit_sends_what_a_validated_one_sends(grid):
    """plots.set_unchecked skips plotly's per-cell validation of the connections view, not
    anything the front end receives: the batch's message and the figure's data are equal."""
    import plotly.graph_objects as go

    from explorer.ui.plots import set_unchecked

    def edit(unchecked: bool) -> tuple:
        fig = go.FigureWidget(data=[go.Scatter(x=[1]), go.Heatmap(z=[[0, 1], [2, 3]])])
        sent: list = []
        fig._send_update_msg = lambda *args, **kwargs: sent.append(kwargs)
        with fig.batch_update():
            fig.data[0].x = [5]
            if unchecked:
                set_unchecked(fig, 1, "z", grid)
            else:
                fig.data[1].z = grid
        return fig.data[1].z, repr(sent)

    assert edit(True) == edit(False)
