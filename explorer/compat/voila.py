"""Voila and Jupyter Server internals the room relies on (written against voila 0.5.13,
jupyter_server 2.21.1).

- Handler classes replaced by identity in ``Voila.init_handlers()``'s list
  (:func:`replace_handlers`): the room's per-visitor kernel check lives in the
  replacements, so a class that is no longer found means a visitor could drive another's
  kernel. Not found: :class:`CompatError`, and the room does not start.
- ``Voila.start`` copied into ``explorer.cli.room.ExplorerVoila.start`` (to build the
  application with the room's class and settings); the canary compares upstream's
  statements with the ones the copy was made from, so any upstream change is reviewed.
- The kernel pool: ``fill_if_needed`` reads ``kernel_pools_config["default"]["pool_size"]``
  (:func:`bound_pool` rewrites it before each refill) and ``get_rendered_notebook`` returns
  ``(render_task, rendered_cache, kernel_id)`` (the room binds the kernel id to a visitor).

Upstream: a public hook for the tornado application class (or for wrapping handlers)
in Voila would replace the copied ``start`` and the identity swap.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from . import Canary, CompatError, missing

DIST, WRITTEN_FOR = "voila", "0.5.13"
SERVER, SERVER_WRITTEN_FOR = "jupyter_server", "2.21.1"

# Voila.start's statements when explorer.cli.room copied it (log lines left out).
START_STATEMENTS = (
    "self.connection_dir = tempfile.mkdtemp(prefix='voila_', dir=self.connection_dir_root)",
    "settings = self.init_settings()",
    "self.app = tornado.web.Application(**settings)",
    "self.app.settings.update(self.tornado_settings)",
    "handlers = self.init_handlers()",
    "self.app.add_handlers('.*$', handlers)",
    "self.listen()",
)


def replaced_classes() -> dict[str, Any]:
    """The upstream handler classes the room replaces, by their names in voila.app."""
    from jupyter_server.services.kernels.handlers import KernelHandler
    from voila.request_info_handler import RequestInfoSocketHandler
    from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler
    from voila.tornado.handler import TornadoVoilaHandler
    from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

    return {c.__name__: c for c in (TornadoVoilaHandler, VoilaKernelWebsocketHandler,
                                    KernelHandler, VoilaShutdownKernelHandler,
                                    RequestInfoSocketHandler)}


def check_handlers() -> None:
    import voila.app

    source = inspect.getsource(voila.app.Voila.init_handlers)
    for name, cls in replaced_classes().items():
        dist = SERVER if cls.__module__.startswith("jupyter_server") else DIST
        written = SERVER_WRITTEN_FOR if dist == SERVER else WRITTEN_FOR
        if getattr(voila.app, name, None) is not cls or name not in source:
            missing(dist, written, f"{cls.__module__}.{name} in Voila.init_handlers()",
                    "the room's per-visitor kernel check replaces it by identity")


# listed by Voila only with some settings: RequestInfoSocketHandler with preheat_kernel
ONLY_SOMETIMES = frozenset({"RequestInfoSocketHandler"})


def replace_handlers(specs: list, replacements: dict[type, type]) -> list:
    """`specs` (Voila's handler list) with each class in `replacements` swapped; raises
    CompatError when one of them is not in the list (its check would silently vanish),
    except those Voila lists only with some settings (ONLY_SOMETIMES)."""
    out, found = [], set()
    for spec in specs:
        pattern, cls, *rest = spec
        if cls in replacements:
            found.add(cls)
        out.append((pattern, replacements.get(cls, cls), *rest))
    for cls in replacements:
        if cls not in found and cls.__name__ not in ONLY_SOMETIMES:
            missing(DIST, WRITTEN_FOR, f"handler {cls.__module__}.{cls.__name__} in "
                    "Voila.init_handlers()", "the room's per-visitor kernel check replaces it")
    return out


def start_statements() -> tuple[str, ...]:
    """Upstream Voila.start's statements, normalised (log calls left out)."""
    from voila.app import Voila

    tree = ast.parse(textwrap.dedent(inspect.getsource(Voila.start)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    return tuple(ast.unparse(s).replace('"', "'") for s in body
                 if not (isinstance(s, ast.Expr) and "self.log." in ast.unparse(s)))


def check_start() -> None:
    got = start_statements()
    if got != START_STATEMENTS:
        extra = sorted(set(got) ^ set(START_STATEMENTS))
        missing(DIST, WRITTEN_FOR, "Voila.start as explorer.cli.room.ExplorerVoila.start "
                "copied it", f"statements differ: {extra}")


def check_pool() -> None:
    from voila.voila_kernel_manager import voila_kernel_manager_factory

    source = inspect.getsource(voila_kernel_manager_factory)
    if "def fill_if_needed(" not in source or \
            'self.kernel_pools_config.get("default"' not in source or \
            '"pool_size"' not in source:
        missing(DIST, WRITTEN_FOR, "fill_if_needed reading kernel_pools_config['default']"
                "['pool_size']")
    if "return render_task, renderer.rendered_cache, kernel_id" not in source:
        missing(DIST, WRITTEN_FOR, "get_rendered_notebook returning (render_task, "
                "rendered_cache, kernel_id)")


def bound_pool(km: Any, free: Callable[[], int], size: int) -> None:
    """Refill Voila's pool of preheated kernels only up to `free()` places (and `size`)."""
    original = km.fill_if_needed

    def fill_if_needed(*args, **kwargs):
        km.kernel_pools_config.setdefault("default", {})["pool_size"] = max(0, min(size, free()))
        return original(*args, **kwargs)

    km.fill_if_needed = fill_if_needed


CANARIES = [
    Canary(DIST, WRITTEN_FOR, "the handler classes the room replaces, in "
           "Voila.init_handlers()", "the per-visitor kernel check", required=True,
           check=check_handlers),
    Canary(DIST, WRITTEN_FOR, "Voila.start's statements", "the room's application and "
           "settings (host check, room state, request log)", required=True, check=check_start),
    Canary(DIST, WRITTEN_FOR, "fill_if_needed's pool_size and get_rendered_notebook's "
           "kernel id", "the room's cap on preheated kernels and visitor binding",
           required=True, check=check_pool),
]

__all__ = ["CompatError", "bound_pool", "replace_handlers", "CANARIES"]
