"""The widget layer: ipywidgets and plotly FigureWidgets over a Session."""

from .served import prepare_room_kernel

prepare_room_kernel()  # a room's kernel: plotly without nbformat, its trimmed validator table

from .app import ExplorerApp  # noqa: E402

__all__ = ["ExplorerApp"]
