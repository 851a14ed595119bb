"""The widget layer: ipywidgets and plotly FigureWidgets over a Session."""

from .lean import import_plotly_widget

import_plotly_widget()  # before any FigureWidget: keeps nbformat out of visitors' kernels

from .app import ExplorerApp  # noqa: E402

__all__ = ["ExplorerApp"]
