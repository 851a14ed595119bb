"""The widget layer: ipywidgets and plotly FigureWidgets over a Session."""

from .app import ExplorerApp

__all__ = ["ExplorerApp"]
