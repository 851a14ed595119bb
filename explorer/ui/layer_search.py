"""A search box beside the layer dropdown, for models with many layers (a ResNet-18 has 21
prunable layers, a BERT-base 73, a ViT-L over 140): type part of a name, pick from the
matches, and the dropdown (which the rest of the app observes) follows. Hidden for small
models, where the dropdown alone is quicker.
"""

from __future__ import annotations

import ipywidgets as W

from .controls import tagged
from .plots import MAX_BARS

SEARCH_MIN_LAYERS = 12  # from this many layers on, the search box shows


class LayerSearch:
    """A Combobox that mirrors `dropdown`'s options and sets its value on a valid pick."""

    def __init__(self, dropdown: W.Dropdown, page: W.Dropdown | None = None) -> None:
        self.dropdown, self.page = dropdown, page
        self.box = tagged(W.Combobox(placeholder="search layers", ensure_option=True,
                                     layout=W.Layout(width="220px")), "layer-search")
        self._options({"new": dropdown.options})
        self.box.observe(self._picked, names="value")
        dropdown.observe(self._options, names="options")

    def _options(self, change: dict) -> None:
        names = [o if isinstance(o, str) else o[1] for o in change["new"]]
        self.box.options = tuple(names)
        self.box.layout.display = None if len(names) >= SEARCH_MIN_LAYERS else "none"

    def _picked(self, change: dict) -> None:
        # ensure_option keeps partial text from being a value, but a stale pick after the
        # options changed must not set the dropdown to a layer it no longer has
        if change["new"] in self.box.options and change["new"] in self.dropdown.options:
            self.dropdown.value = change["new"]
            self._show_bar(list(self.dropdown.options).index(change["new"]))

    def _show_bar(self, index: int) -> None:
        # a layer found by search is usually on another page of bars: turn to it, so the
        # highlighted bar and the histogram speak of the same layer
        if self.page is None:
            return
        values = [o[1] if isinstance(o, tuple) else o for o in self.page.options]
        if index // MAX_BARS in values:
            self.page.value = index // MAX_BARS


def layer_search(dropdown: W.Dropdown, page: W.Dropdown | None = None) -> W.Combobox:
    """The search box for `dropdown` (its observers keep the LayerSearch alive); a pick also
    turns the bar `page` to the layer's page."""
    return LayerSearch(dropdown, page).box
