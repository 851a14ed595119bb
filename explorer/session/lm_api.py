"""Session.lm: what applies to a language model on text only (gpt-tiny, an hf: model).

Head and neuron removal, a greedy sample and the corpus; the work is done by
explorer.session.language. Session.prune(structured=True) routes here (prune_heads) for
a language model. Every method raises ValueError naming the session's model when it is not one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..data.text import TextCorpus
from ..engine.lm import SAMPLE_PROMPT, generate
from ..engine.metrics import Snapshot
from . import core, language
from .tasks import SAMPLE_CHARS, as_gpt, require_lm

if TYPE_CHECKING:
    from .host import Host


def prune_heads(session: Host, threshold: float | None, sparsity: float | None,
                std: float | None, norm: str, scope: str) -> Snapshot:
    """Session.prune(structured=True) of a language model: a `sparsity` fraction of the
    attention heads removed from the dense base."""
    if sparsity is None or threshold is not None or std is not None:
        raise ValueError("structured pruning of gpt-tiny removes a fraction of the "
                         f"heads: give sparsity= only (got threshold={threshold}, "
                         f"std={std})")
    with session.lock:
        session.jobs.check_idle("pruning")
        session.slot.clear_masks()
        return session.lm.remove_heads(sparsity, norm, scope)


class Language:
    """remove_heads, remove_neurons, sample and the corpus of a language-model session."""

    def __init__(self, session: Host) -> None:
        self._session = session

    @property
    def corpus(self) -> TextCorpus:
        """The text corpus of a language-model session."""
        return require_lm(self._session, "corpus").corpus

    def remove_heads(self, fraction: float, rank: str = "l1",
                     scope: str = "global") -> Snapshot:
        """Remove the lowest-ranked `fraction` of attention heads (l1/l2 norm of their
        output-projection slice, or the loss rise when masked), on top of current masks;
        reset_pruning() brings them back, shrink() drops them physically."""
        session = self._session
        require_lm(session, "remove_heads")
        with session.lock:
            session.jobs.check_idle("pruning")
            language.remove_heads(session, fraction, rank, scope)
            return core.snapshot(session)

    def remove_neurons(self, fraction: float, norm: str = "l1") -> Snapshot:
        """Remove the lowest-norm `fraction` of every block's MLP neurons."""
        session = self._session
        require_lm(session, "remove_neurons")
        with session.lock:
            session.jobs.check_idle("pruning")
            language.remove_neurons(session, fraction, norm)
            return core.snapshot(session)

    def sample(self, prompt: str = SAMPLE_PROMPT, n_chars: int = SAMPLE_CHARS) -> str:
        """A greedy continuation of `prompt` by the selected language model."""
        corpus = require_lm(self._session, "sample").corpus
        with self._session.lock:
            return generate(as_gpt(self._session.model), corpus.vocab, prompt, n_chars)
