"""``python -m explorer.cli.dashboard ARGS``: start Voila with the token taken from the environment.

``explorer dashboard`` runs this instead of ``python -m voila`` so that an access token never
appears on a command line (any local user can read command lines in the process list). The
token travels in $EXPLORER_TOKEN, which is removed here before Voila starts any kernel, so the
notebook's code cannot read it either.

Two fixes to Voila's page are installed here as well:

- Closing or reloading a tab shuts its kernel down. Voila's page sends that request (a
  beacon to ``voila/api/shutdown/<kernel>``) with the value of the ``_xsrf`` cookie, but
  Voila never sets the cookie, so the server refused it (403, "_xsrf argument missing")
  and every closed tab kept a kernel of 0.5-0.8 GB until the idle cull. Reading
  ``xsrf_token`` while serving the page sets the cookie, and the shutdown goes through.
- The page asks nothing of the internet: the ``explorer`` Voila template (package data,
  found through $JUPYTER_PATH, see explorer.cli.main.dashboard_env) drops the Font Awesome
  CDN links of Voila's lab template, and only the front-end extensions the app needs are
  loaded (JupyterLab's own widget manager and others ask for shared modules Voila's page
  does not have, which filled the console with "Unsatisfied version" warnings).
"""

from __future__ import annotations

import inspect
import os
import sys

TOKEN_ENV = "EXPLORER_TOKEN"
TEMPLATE = "explorer"
EXTENSIONS = ("@voila-dashboards/widgets-manager8", "@jupyter-widgets/jupyterlab-manager",
              "anywidget", "jupyterlab-plotly")


def set_xsrf_cookie_with_the_page() -> None:
    """Make Voila's page handler set the ``_xsrf`` cookie its shutdown beacon sends back."""
    from voila.handler import VoilaHandler

    if getattr(VoilaHandler, "_explorer_xsrf", False):
        return
    prepare = VoilaHandler.prepare

    async def prepare_and_set_cookie(self, *args, **kwargs):
        result = prepare(self, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if self.request.method == "GET" and not self._finished:
            self.xsrf_token  # noqa: B018 - reading it sets the cookie (tornado)
        return result

    VoilaHandler.prepare = prepare_and_set_cookie
    VoilaHandler._explorer_xsrf = True


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
    config.VoilaConfiguration.template = TEMPLATE
    config.VoilaConfiguration.extension_allowlist = list(EXTENSIONS)
    set_xsrf_cookie_with_the_page()
    Voila.launch_instance(argv=sys.argv[1:] if argv is None else argv, config=config)


if __name__ == "__main__":
    main()
