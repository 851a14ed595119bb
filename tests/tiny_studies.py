"""Tiny budgets for the reproductions, so tests run the studies' code paths in seconds.

The studies' numbers are checked by the bench and by the full runs in the README; the tests that
use these budgets check keys, intervals and that a notebook's plotting code runs on the results.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any


def shrink_studies(set_attr: Callable[[Any, str, Any], None] = setattr,
                   set_item: Callable[[Any, Any, Any], None] = operator.setitem) -> None:
    """Point the reproductions at digits with tiny budgets (``monkeypatch``'s two setters undo
    it after a test; the defaults change this process for good, as in a notebook's kernel)."""
    from explorer.studies import common, deep_compression, han, hinton, lottery

    set_attr(common, "DATASET", "digits")
    set_item(lottery.SETTINGS, True, dict(epochs=1, rounds=3, control_rounds=(0, 3)))
    set_item(han.SETTINGS, True, dict(dense_epochs=2, steps=3, quality_step=0.5,
                                      finetune_epochs=1))
    set_item(hinton.SETTINGS, True, dict(teacher_epochs=2, student_epochs=1,
                                         temperatures=(4.0,)))
    set_attr(hinton, "STUDENTS", ((64, 64), (8, 8)))
    set_item(deep_compression.SETTINGS, True, dict(
        dense_epochs=1, steps=1, quality_step=0.5, finetune_epochs=1, codebook_epochs=1))
