"""The widget layer: ipywidgets and plotly FigureWidgets over a Session."""

from .lean import import_plotly_widget

import_plotly_widget()  # before any FigureWidget: keeps nbformat out of visitors' kernels

from .served import use_served_validators  # noqa: E402

use_served_validators()  # in a room's kernel: the part of plotly's validator table we use

from .app import ExplorerApp  # noqa: E402

__all__ = ["ExplorerApp"]
