"""A session's switches (Session.settings): plain values, below every collaborator."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Settings:
    """A session's switches (Session.settings)."""

    # After structured pruning, re-estimate BatchNorm statistics on a few hundred training
    # samples (no gradient step) before anything is measured; False shows the stale ones.
    bn_recalibration: bool = True
    # A language model's snapshots carry a generated text sample (60 forward passes, about
    # a third of a prune's time on gpt-tiny); a front end that generates it itself, off
    # the slider's path, sets this False (the app does: issue 15 item 3).
    # Session.lm.sample() and explorer.session.views.text_sample always work.
    sample_in_snapshots: bool = True
