"""``python -m explorer.cli.dashboard [--token-fd N] ARGS``: start the dashboard's Voila.

``explorer dashboard`` runs this instead of ``python -m voila``. The access token never
appears on a command line (any local user can read command lines) nor in an environment
(a kernel could read it from ``/proc/<pid>/environ`` of its parent): it arrives through a
pipe whose read end is file descriptor N, read and closed here before Voila starts, so no
kernel inherits the descriptor either. The server is :class:`explorer.cli.room.ExplorerVoila`
(Voila plus a Host check, kernels bound to their visitor, a visitor cap, a session banner).

The page asks nothing of the internet: the ``explorer`` Voila template (package data, found
through $JUPYTER_PATH, see explorer.cli.main.dashboard_env) drops the Font Awesome CDN links
of Voila's lab template, and only the front-end extensions the app needs are loaded
(other extensions ask for shared modules Voila's page does not have, which filled the
console with "Unsatisfied version" warnings; the widget manager's own remain, see
EXTENSIONS).
"""

from __future__ import annotations

import os
import sys

TOKEN_ENV = "EXPLORER_TOKEN"
TOKEN_FD_FLAG = "--token-fd="


def read_token(fd: int) -> str:
    """The whole content of descriptor ``fd`` (a pipe), stripped; the descriptor is closed."""
    with os.fdopen(fd, "rb") as pipe:
        return pipe.read().decode("utf-8").strip()


TEMPLATE = "explorer"
# 13 "Unsatisfied version 4.2.5 ... (required ^4.6.2 / ^4.5.10)" console warnings remain;
# webpack's share scope warns and then uses the page's singletons, which work. Voila
# 0.5.13's page carries JupyterLab 4.2.5 core packages, and:
# - 9 (^4.6.2) come from @jupyter-widgets/jupyterlab-manager: jupyterlab_widgets 3.0.17,
#   which ipywidgets 8.1.9 requires, was built against JupyterLab 4.6. The newest build that
#   asks for ^4.2.4 is 3.0.13, which means ipywidgets 8.1.5: we keep the current widgets;
# - 4 (^4.5.10: statedb, services, rendermime, coreutils) come from Voila's own
#   @voila-dashboards/widgets-manager8, built against JupyterLab 4.5 (checked in its
#   remoteEntry); nothing short of another Voila changes them.
# Neither extension can go: without them no widget renders (checked: the page never shows
# the app), and no Voila setting or page-config option silences share-scope warnings.
# Not jupyterlab-plotly: it renders plotly's mime output (`fig.show()`), which the app never
# sends (its figures are anywidgets), and each page would download and compile its 4.8 MB
# copy of plotly.js besides the widget's own.
EXTENSIONS = ("@voila-dashboards/widgets-manager8", "@jupyter-widgets/jupyterlab-manager",
              "anywidget")


def main(argv: list[str] | None = None) -> None:
    """Launch the server with ``argv``; a leading ``--token-fd=N`` gives ``Voila.token``."""
    from traitlets.config import Config

    from .room import ExplorerVoila
    from .room_kernel import RoomKernelSpecManager

    args = list(sys.argv[1:] if argv is None else argv)
    token = ""
    if args and args[0].startswith(TOKEN_FD_FLAG):
        token = read_token(int(args.pop(0)[len(TOKEN_FD_FLAG):]))
    os.environ.pop(TOKEN_ENV, None)  # never handed to kernels (we do not send it, either)
    config = Config()
    if token:
        # Voila (jupyter_server 2) then requires ?token= or the login cookie on every page,
        # kernel and websocket request.
        config.ExplorerVoila.token = token
    config.VoilaConfiguration.template = TEMPLATE
    # /voila/files/ would serve images (and more) from the notebook's folder: serve none
    # (set here: "--VoilaConfiguration.file_allowlist=[]" on the command line is deprecated).
    config.VoilaConfiguration.file_allowlist = []
    config.VoilaConfiguration.extension_allowlist = list(EXTENSIONS)
    config.VoilaConfiguration.kernel_spec_manager_class = RoomKernelSpecManager
    ExplorerVoila.launch_instance(argv=args, config=config)


if __name__ == "__main__":
    main()
