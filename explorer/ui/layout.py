"""One screen: the headline across the top, a control column beside the live figure.

At 1280x720 (Voila) the headline, the sparsity slider and the per-layer plot are all in
view without scrolling; in a narrower box (a 900 px JupyterLab cell) the figure column
wraps below the controls, and rows of buttons wrap rather than cut a label. Talk mode
keeps only the story's controls. Under the headline, in both, the next step (guide.py).
"""

from __future__ import annotations

import ipywidgets as W

from .controls import tagged
from .host import Host
from .panels import prune_box, train_rows
from .theme import css

SIDE_WIDTH = {False: "400px", True: "400px"}
FIGURE_MIN = "540px"


def reserve(app: Host) -> str:
    """CSS that keeps the main figure's height free before plotly draws it, so nothing
    below it jumps when it does (issue 28); per mode, as a page may hold both apps."""
    mode = ".cx-talk" if app.talk else ":not(.cx-talk)"
    return (f"<style>.cx-app{mode} .cx-fig-main {{ min-height: {app.fig.layout.height}px; }}"
            "</style>")


def build_layout(app: Host) -> tuple[W.Tab, list[W.Widget]]:
    """The app's tabs and its children, top to bottom."""
    c, talk = app.c, app.talk
    title = W.HTML(css(app.theme) + reserve(app) +
                   '<div class="cx-title">Compression Explorer</div>')
    head = [title, c.summary, app.guide.widget]
    tabs = [("Prune", prune_box(c, talk, app.quant.box)), ("Distill", app.distill.box)]
    if not talk:  # the story in order, fewer knobs
        tabs += [("Compare", app.compare.box), ("Data & model", app.model_panel.box)]
    tab = tagged(W.Tab(children=[box for _, box in tabs]), "tabs")
    for i, (name, _) in enumerate(tabs):
        tab.set_title(i, name)
    side = tagged(W.VBox([tab, *train_rows(c, talk), app.sample],
                         layout=W.Layout(flex=f"0 1 {SIDE_WIDTH[talk]}", min_width="280px",
                                         max_width="100%")), "side")
    for panel in (app.distill, app.compare):
        panel.figure_box.layout.display = "none"
    figures = tagged(W.VBox([app.distill.figure_box, app.compare.figure_box, app.fig,
                             app.cards.box],
                            layout=W.Layout(flex=f"1 1 {FIGURE_MIN}", min_width="0")),
                     "figures")
    main = tagged(W.HBox([side, figures], layout=W.Layout(flex_flow="row wrap",
                                                          width="100%")), "main")
    return tab, [*head, main, app.resizer, app.errors.widget]
