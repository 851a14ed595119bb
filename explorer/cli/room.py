"""The dashboard's Voila server with a room's rules: who may reach it, who may drive a kernel.

``explorer.cli.dashboard`` launches :class:`ExplorerVoila` instead of plain Voila. On top of
Voila it adds:

- a Host header check on every request (HTTP and websocket), like Jupyter Server's
  ``allow_remote_access=False``: loopback names and addresses, plus the names given with
  ``--host`` / ``--allow-host``. Voila itself sets ``allow_remote_access=True``, so a
  DNS-rebinding page could otherwise drive the app. A refused request gets 403 before any
  handler runs, so it starts no kernel (``room_hosts``);
- kernels bound to the visitor who started them: the page sets a signed cookie
  (``explorer_visitor``), and the kernel's channels websocket, its REST model, its shutdown
  and its session status answer only to that cookie (403 otherwise);
- a cap on visitors (``max_visitors``): once that many kernels belong to visitors, a new
  page gets a short "the room is full" page (503, Retry-After) and no kernel; the pool of
  preheated kernels is refilled only up to the places left;
- places that cannot be hoarded (``room_places``): a kernel whose page never connects its
  websocket is shut down ``connect_grace`` seconds after the page went out, and one client
  address may hold at most ``pending_per_address`` such kernels (429 beyond);
- a log without the token (request lines scrub it) and one line per refusal (``room_log``);
- the ``_xsrf`` cookie set with the page, so the shutdown beacon Voila's page sends when
  its tab closes is accepted and the kernel is freed at once;
- a longer wait for slow widget modules: anywidget drops every update to a widget whose
  module took over 2 s to start, which froze the plots of a full room (``room_pages``);
- plotly's widget module served once by URL (``explorer.ui.served``), so that figures do not
  each carry its 5 MB through the kernel and the websocket;
- a session banner: each page polls ``explorer/api/session/<kernel id>`` and shows "the
  session restarted; reload" once the kernel died, restarted, or was shut down;
- Voila's ``/voila/query/<kernel id>`` websocket (request info for preheated kernels, which
  includes the query string and so the token) is not served: our notebooks do not read it.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import socket
from urllib.parse import parse_qsl, urlencode

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from jupyter_server.services.kernels.handlers import KernelHandler
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Int, List, Unicode
from voila.app import Voila
from voila.request_info_handler import RequestInfoSocketHandler
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

from ..compat import CompatError, run_canaries
from ..compat.anywidget import wait_script
from ..compat.voila import bound_pool, replace_handlers
from ..config import PLOTLY_MODULE_ENV, PLOTLY_VALIDATORS_ENV
from .quiet_start import quiet
from .room_hosts import LOG_SETTING, WILDCARD_HOSTS, HostCheckedApplication
from .room_log import log_request, note_refusal, plain_error, refuse
from .room_pages import (
    ADDRESS_PAGE,
    BANNER_JS,
    FULL_PAGE,
    PlotlyModuleHandler,
    plotly_bundle_dir,
    plotly_module_path,
    used_validators_file,
)
from .room_places import ADDRESS, DEFAULT_GRACE_S, DEFAULT_PER_ADDRESS, Room

COOKIE = "explorer_visitor"
ROOM = "explorer_room"
HEAD_SCRIPT = "explorer_head_script"  # anywidget's longer ready timer, when its canary passes
SESSION_POLL_MS = 3000
ADDRESS_RETRY_S = 5  # a refused burst from one address retries this soon


def _room(handler: tornado.web.RequestHandler) -> Room:
    return handler.settings[ROOM]


def _visitor(handler: tornado.web.RequestHandler) -> str | None:
    value = handler.get_signed_cookie(COOKIE)
    return value.decode() if value else None


def _owns(handler: tornado.web.RequestHandler, kernel_id: str | None) -> bool:
    visitor = _visitor(handler)
    owner = _room(handler).owner(kernel_id) if kernel_id else None
    return owner is not None and visitor is not None and secrets.compare_digest(owner, visitor)


def _kernel_id(handler: tornado.web.RequestHandler) -> str | None:
    if "kernel_id" in handler.path_kwargs:
        return handler.path_kwargs["kernel_id"]
    return handler.path_args[0] if handler.path_args else None


def _refuse_unless_owner(handler: tornado.web.RequestHandler) -> None:
    if not _owns(handler, _kernel_id(handler)):
        raise refuse(handler, 403, "the kernel belongs to another visitor")


class _Recorder:
    """The kernel manager as one page sees it: kernels it starts or takes are bound."""

    def __init__(self, km, bind) -> None:
        self._km = km
        self._bind = bind

    def __getattr__(self, name: str):
        return getattr(self._km, name)

    async def start_kernel(self, *args, **kwargs):
        kernel_id = await ensure_async(self._km.start_kernel(*args, **kwargs))
        self._bind(kernel_id)
        return kernel_id

    async def get_rendered_notebook(self, *args, **kwargs):
        result = await self._km.get_rendered_notebook(*args, **kwargs)
        self._bind(result[2])  # (render_task, rendered_cache, kernel_id)
        return result


def drop_token(request) -> None:
    """Remove ``token=`` from the request's query: Voila copies the URL and query string into
    each kernel's environment ($VOILA_REQUEST_URL, $QUERY_STRING), where code could read it.
    The visitor is authenticated (and has the login cookie) by then."""
    if "token" not in request.query_arguments:
        return
    pairs = [(k, v) for k, v in parse_qsl(request.query, keep_blank_values=True) if k != "token"]
    request.query = urlencode(pairs)
    request.uri = request.path + (f"?{request.query}" if request.query else "")
    request.query_arguments.pop("token", None)
    request.arguments.pop("token", None)


class RoomPageHandler(TornadoVoilaHandler):
    """The dashboard page: a place in the room, the visitor cookie, the session banner."""

    _page_kernel: str | None = None
    _head_patched = False

    def write(self, chunk) -> None:  # the first chunk with <head> gets our head tags
        if not self._head_patched and isinstance(chunk, str):
            match = re.search(r"<head[^>]*>", chunk, re.IGNORECASE)
            if match:
                self._head_patched = True
                chunk = chunk[:match.end()] + self._head_tags() + chunk[match.end():]
        super().write(chunk)

    @property
    def kernel_manager(self):
        return _Recorder(self.settings["kernel_manager"], self._bind_kernel)

    def _bind_kernel(self, kernel_id: str) -> None:
        room = _room(self)
        room.bind(kernel_id, self._visitor_id, self.request.remote_ip)
        room.leave(self.request.remote_ip)
        self._admitted = False
        self._page_kernel = kernel_id

    def _head_tags(self) -> str:
        # Fetch and compile plotly's widget module while the page and the kernel start,
        # not once the first figure asks for it (the figures import this very URL).
        module = html.escape(f"{self.base_url.rstrip('/')}/{plotly_module_path()}")
        return self.settings.get(HEAD_SCRIPT, "") + f'<link rel="modulepreload" href="{module}">'

    def _refuse_page(self, room: Room, refusal: str, address: str) -> None:
        """The room-full page (503), or the too-many-starting-pages one (429): no kernel."""
        self.set_header("Cache-Control", "no-store")
        if refusal == ADDRESS:
            note_refusal(self, f"{room.per_address} pages from this address have not "
                               "connected yet")
            self.set_status(429)
            self.set_header("Retry-After", str(ADDRESS_RETRY_S))
            self.finish(ADDRESS_PAGE.format(count=room.per_address, retry=ADDRESS_RETRY_S,
                                            address=html.escape(address)))
            return
        taken = room.taken()
        note_refusal(self, f"the room is full ({taken} of {room.max_visitors} places)")
        self.set_status(503)
        self.set_header("Retry-After", "60")
        self.finish(FULL_PAGE.format(count=taken, cap=room.max_visitors))

    @tornado.web.authenticated
    async def get(self, path=None):
        if self.notebook_path and path:  # Voila redirects these to /voila/files/: refuse
            raise tornado.web.HTTPError(404)
        room = _room(self)
        address = self.request.remote_ip
        refusal = room.admit(address)
        if refusal is not None:
            self._refuse_page(room, refusal, address)
            return
        drop_token(self.request)
        self._admitted = True
        self._visitor_id = _visitor(self) or secrets.token_urlsafe(18)
        self.set_signed_cookie(COOKIE, self._visitor_id, expires_days=None, httponly=True,
                               samesite="Lax", path=self.base_url or "/")
        # Voila's page sends `_xsrf` from document.cookie with its shutdown beacon when the
        # tab closes; without the cookie the shutdown is refused (403) and the kernel lingers.
        _ = self.xsrf_token  # sets the _xsrf cookie
        try:
            await super().get(path=path)
        finally:
            if self._admitted:
                room.leave(address)
            if self._page_kernel is not None:  # its grace period starts now
                room.delivered(self._page_kernel)
        if self._page_kernel is not None:
            url = json.dumps(f"{self.base_url.rstrip('/')}/explorer/api/session/"
                             f"{self._page_kernel}")
            self.write(BANNER_JS.format(url=url, poll_ms=SESSION_POLL_MS))


class OwnedKernelWebsocketHandler(VoilaKernelWebsocketHandler):
    """A kernel's channels, only for the visitor whose page started the kernel."""

    write_error = plain_error  # Jupyter Server's HTML error page fails here (no templates)

    async def pre_get(self):
        _refuse_unless_owner(self)
        await super().pre_get()
        _room(self).connected(_kernel_id(self))  # the place is the visitor's now


class OwnedKernelHandler(KernelHandler):
    async def prepare(self):
        await super().prepare()
        _refuse_unless_owner(self)


class OwnedShutdownHandler(VoilaShutdownKernelHandler):
    async def prepare(self):
        await super().prepare()
        _refuse_unless_owner(self)


class SessionHandler(APIHandler):
    """``GET explorer/api/session/<kernel id>``: {"alive", "restarts"} for the owner."""

    @tornado.web.authenticated
    async def get(self, kernel_id):
        _refuse_unless_owner(self)
        room = _room(self)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"alive": room._alive(kernel_id),
                                "restarts": room.restarts.get(kernel_id, 0)}))


class RefusedHandler(tornado.web.RequestHandler):
    def prepare(self):
        raise tornado.web.HTTPError(403)


# upstream handler class -> the room's (swapped by explorer.compat.voila)
ROOM_HANDLERS: dict[type, type] = {
    TornadoVoilaHandler: RoomPageHandler,
    VoilaKernelWebsocketHandler: OwnedKernelWebsocketHandler,
    KernelHandler: OwnedKernelHandler,
    VoilaShutdownKernelHandler: OwnedShutdownHandler,
    RequestInfoSocketHandler: RefusedHandler,
}


class ExplorerVoila(Voila):
    """Voila with the room's rules (see the module docstring)."""

    name = "explorer-voila"
    max_visitors = Int(0, config=True, help="most visitors with a kernel at once; 0: no cap")
    allowed_hosts = List(Unicode(), config=True,
                         help="Host names (besides loopback) that requests may name")
    connect_grace = Float(DEFAULT_GRACE_S, min=0, config=True,
                          help="seconds after its page was delivered that a kernel whose page "
                          "never connected is shut down; 0: never")
    pending_per_address = Int(DEFAULT_PER_ADDRESS, min=0, config=True,
                              help="most kernels one client address may hold whose page has "
                              "not connected (pages being served count); 0: no limit")

    def _host_settings(self) -> dict:
        names = {h.lower().strip("[]").rstrip(".") for h in self.allowed_hosts if h}
        ip = (self.ip or "").strip("[]").lower()
        any_address = ip in WILDCARD_HOSTS
        if any_address:  # listening everywhere: this machine's own names too
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        elif ip:
            names.add(ip)
        return {"explorer_allowed_hosts": frozenset(names), "explorer_any_address": any_address}

    def init_handlers(self) -> list:
        handlers = replace_handlers(super().init_handlers(), ROOM_HANDLERS)
        session = self.server_url.rstrip("/") + r"/explorer/api/session/(?P<kernel_id>[\w-]+)"
        handlers.insert(0, (session, SessionHandler))
        folder, name = plotly_module_path().rsplit("/", 1)
        pattern = f"{self.server_url.rstrip('/')}/{re.escape(folder)}/({re.escape(name)})"
        handlers.insert(0, (pattern, PlotlyModuleHandler, {"path": str(plotly_bundle_dir())}))
        return handlers

    def initialize(self, argv=None) -> None:
        # Before Voila's kernel manager starts the pool: its kernels copy this environment.
        os.environ[PLOTLY_MODULE_ENV] = plotly_module_path()
        os.environ[PLOTLY_VALIDATORS_ENV] = str(used_validators_file())
        super().initialize(argv)

    def check_patches(self) -> str:
        """Run explorer.compat's canaries: refuse to start (CompatError) when a patch that
        keeps visitors apart no longer fits Voila; start without a speed-up that no longer
        fits, saying so in the log. Returns the page head script (empty without it)."""
        failed = run_canaries()
        required = [str(err) for canary, err in failed if canary.required]
        if required:
            raise CompatError("the room cannot start: " + "; ".join(required))
        off = set()
        for canary, err in failed:
            self.log.warning("starting without %s: %s", canary.patch, err)
            off.add(canary.distribution)
        return "" if "anywidget" in off else wait_script()

    def start(self):  # Voila.start (compat.voila checks it), with our class and settings
        import tempfile

        head_script = self.check_patches()
        self.connection_dir = tempfile.mkdtemp(prefix="voila_", dir=self.connection_dir_root)
        self.log.info("Storing connection files in %s.", self.connection_dir)
        settings = self.init_settings()
        settings[HEAD_SCRIPT] = head_script
        settings[ROOM] = room = Room(self.kernel_manager, self.max_visitors,
                                     self.connect_grace, self.pending_per_address)
        if self.voila_configuration.preheat_kernel and self.max_visitors > 0:
            bound_pool(self.kernel_manager, lambda: room.max_visitors - room.taken(),
                       self.voila_configuration.default_pool_size)
        settings.update(self._host_settings())
        settings[LOG_SETTING] = self.log
        quiet(self.log, self.notebook_path)  # no expected warnings on a start
        settings["log_function"] = log_request  # the token scrubbed from request lines
        # gzip what a page downloads (its 6.7 MB of JS: Voila's chunks, the widget managers,
        # the plotly module; text and JSON too): a visitor on a real network fetches about a
        # third; websockets are not affected (tornado's GZipContentEncoding, issue 29)
        settings["compress_response"] = True
        self.app = HostCheckedApplication(**settings)
        self.app.settings.update(self.tornado_settings)
        self.app.add_handlers(".*$", self.init_handlers())
        if room.grace_s > 0:  # one timer in the event loop, not a check per request
            PeriodicCallback(lambda: room.shut_expired(self.log),
                             1000 * room.check_interval_s()).start()
        self.listen()
