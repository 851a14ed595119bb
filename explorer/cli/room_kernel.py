"""The kernel a room's visitor gets: ipykernel without its debugger or input history.

Nobody debugs a dashboard visitor's kernel or reads its input history, yet each kernel would
import debugpy and pydevd (about 7 MiB and 130 modules) and keep an SQLite history that
every visitor's kernel shares on disk (~/.ipython). The room's server runs its kernels
through :class:`RoomKernelSpecManager`, which starts this module in place of
``ipykernel_launcher`` with the same arguments; JupyterLab's kernels are untouched.
"""

from __future__ import annotations

import logging
import sys

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

LAUNCHER = "ipykernel_launcher"
NO_HISTORY = "--HistoryManager.enabled=False"
PLAIN_TCP = "Kernel is running over TCP without encryption"


def lean_argv(argv: list[str]) -> list[str]:
    """``python -m ipykernel_launcher ARGS`` as ``python -m explorer.cli.room_kernel ARGS``
    without history; any other command as it is."""
    if LAUNCHER not in argv or argv[argv.index(LAUNCHER) - 1] != "-m":
        return list(argv)
    at = argv.index(LAUNCHER)
    return [*argv[:at], __name__, *argv[at + 1:], NO_HISTORY]


class RoomKernelSpecManager(KernelSpecManager):
    """Kernel specs as installed, with ipykernel started through this module."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        spec = super().get_kernel_spec(kernel_name)
        spec.argv = lean_argv(spec.argv)
        return spec


class LoopbackPlainTcp(logging.Filter):
    """Drops ipykernel's "Kernel is running over TCP without encryption" warning, printed
    once per kernel on every start: a room's kernels listen on loopback only (jupyter_client
    refuses any other interface), where the warning is expected, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(PLAIN_TCP)


def main() -> None:
    sys.modules["debugpy"] = None  # type: ignore[assignment]  # ipykernel: no debugger
    logging.getLogger("IPKernelApp").addFilter(LoopbackPlainTcp())  # the app's own logger
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
