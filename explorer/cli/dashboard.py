"""``python -m explorer.cli.dashboard ARGS``: start Voila with the token taken from the environment.

``explorer dashboard`` runs this instead of ``python -m voila`` so that an access token never
appears on a command line (any local user can read command lines in the process list). The
token travels in $EXPLORER_TOKEN, which is removed here before Voila starts any kernel, so the
notebook's code cannot read it either.
"""

from __future__ import annotations

import os
import sys

TOKEN_ENV = "EXPLORER_TOKEN"


def main(argv: list[str] | None = None) -> None:
    """Launch Voila with ``argv``; an $EXPLORER_TOKEN (if set) becomes ``Voila.token``."""
    from traitlets.config import Config
    from voila.app import Voila

    token = os.environ.pop(TOKEN_ENV, "")  # kernels inherit os.environ: drop it first
    config = Config()
    if token:
        # Voila (jupyter_server 2) then requires ?token= or the login cookie on every page,
        # kernel and websocket request.
        config.Voila.token = token
    Voila.launch_instance(argv=sys.argv[1:] if argv is None else argv, config=config)


if __name__ == "__main__":
    main()
