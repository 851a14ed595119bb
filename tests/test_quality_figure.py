"""The Compare tab's quality figure: its axes span the classes (or heads), nothing more."""

from __future__ import annotations

import numpy as np

from explorer.ui.figures import quality_figure, update_heads, update_quality
from explorer.ui.theme import get_theme


def test_confusion_axes_span_the_classes_and_regression_autoranges():
    fig = quality_figure(get_theme())
    update_quality(fig, np.eye(10, dtype=int).tolist(), None, "Confusion matrix")
    x, y = fig.layout.xaxis, fig.layout.yaxis
    assert tuple(x.range) == (-0.5, 9.5) and x.autorange is False
    assert tuple(y.range) == (9.5, -0.5)  # class 0 on top
    # square cells shrink the domain rather than widen the range (-5 .. 14 before)
    assert x.constrain == "domain" and y.constrain == "domain" and y.scaleanchor == "x"
    update_quality(fig, None, (np.arange(5.0), np.arange(5.0)), "Predicted vs true")
    assert fig.layout.xaxis.autorange is True and fig.layout.yaxis.autorange is True
    assert fig.layout.yaxis.scaleanchor is None
    update_heads(fig, [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]], "Heads")
    assert tuple(fig.layout.xaxis.range) == (-0.5, 3.5)
    assert tuple(fig.layout.yaxis.range) == (1.5, -0.5)
