"""The next-step line (issue 28, a first minute that needs no README): it names one step,
highlighted, and moves on as the person does each thing; an Undo does not send it back."""

from __future__ import annotations

import re

from ui_util import settle

from explorer.ui.guide import DONE, Guide


def now(app) -> str:
    """The highlighted step's text, tags stripped."""
    found = re.search(r'<span class="cx-now">(.*?)</span>', app.guide.widget.value)
    return "" if found is None else re.sub(r"<[^>]+>", "", found.group(1))


def test_the_line_follows_what_the_person_does(digits_app):
    app = digits_app
    assert now(app) == "1 Drag sparsity to 0.9"
    app.c.slider.value = 0.5  # not yet there
    assert now(app) == "1 Drag sparsity to 0.9"
    app.c.slider.value = 0.9
    assert now(app) == "2 Press Prune and fine-tune"
    app.c.steps.value, app.c.finetune_epochs.value = 1, 1
    assert app.start_prune_finetune()
    settle(app)
    assert now(app) == "3 Pin the result in Compare"
    app.undo()  # a step once done stays done
    assert now(app) == "3 Pin the result in Compare"
    app.tabs.selected_index = 2
    app.compare.pin_now()
    assert now(app) == "4 Train a small student in Distill"
    app.tabs.selected_index = 1
    app.distill.epochs.value = 1
    assert app.distill.start("distill")
    settle(app)
    assert now(app) == "" and DONE in app.guide.widget.value
    assert app.guide.widget.value.count("&#10003;") == 0  # the done line replaces the steps


def test_a_step_done_out_of_order_gets_its_tick_and_the_current_step_stays(digits_app):
    app = digits_app
    app.tabs.selected_index = 2
    app.compare.pin_now()  # step 3 before 1 and 2
    assert now(app) == "1 Drag sparsity to 0.9"
    assert "&#10003; Pin the result in <i>Compare</i>" in app.guide.widget.value


def test_talk_mode_has_no_compare_step():
    guide = Guide(talk=True)
    assert [k for k, _ in guide.steps] == ["drag", "finetune", "distill"]
    assert guide.current() == "drag" and "cx-now" in guide.widget.value
