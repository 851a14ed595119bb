"""explorer.session: the Session that owns all state (slots, masks, history, jobs).

Importing the package registers the language-model variant with Session, so that
`Session("pydoc-text", "gpt-tiny")` builds it whichever module is imported first.
"""

from . import lm_session as _lm_session  # noqa: F401  (registers LMSession)
