"""Ask once before a click throws work away: the first click arms the button (its label
says so and the status bar asks), a second click on the same button goes ahead."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as W


class Confirm:
    """A button's armed state; `label` is its normal text, `armed` its asking text."""

    def __init__(self, button: W.Button, armed: str) -> None:
        self.button, self.label, self.armed_label = button, button.description, armed
        self.armed = False

    def go(self, at_stake: bool, ask: Callable[[], None]) -> bool:
        """Whether to go ahead now: yes when nothing is at stake or this is the second
        click; else arm the button, call `ask` (a status line) and say no."""
        if at_stake and not self.armed:
            self.armed = True
            self.button.description = self.armed_label
            ask()
            return False
        self.disarm()
        return True

    def disarm(self) -> None:
        if self.armed:
            self.armed = False
            self.button.description = self.label
