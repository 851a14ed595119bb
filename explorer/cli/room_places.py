"""The room's places (explorer.cli.room): which visitor owns which kernel, how many places are
taken, and kernels whose page never connected.

A page's GET starts (or takes from the pool) a kernel before any browser shows up, so a plain
HTTP client could fill the room with GETs and hold every place until the idle cull (15 min).
Here a kernel only keeps its place once its page's channels websocket connects; until then it
is *unconnected*:

- an unconnected kernel is shut down ``grace_s`` seconds after its page was delivered
  (checked on a timer in the server's event loop, :meth:`Room.shut_expired`);
- one client address may hold at most ``per_address`` unconnected kernels (pages still
  rendering count too): a further page gets a short "retry in a few seconds" answer.

A browser connects within seconds of receiving its page, so visitors behind one address (a
class behind NAT, ``explorer bench --visitors`` on loopback) get their places: only a burst
of more than ``per_address`` simultaneous first loads waits a few seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from jupyter_core.utils import ensure_async

DEFAULT_GRACE_S = 60
DEFAULT_PER_ADDRESS = 2
FULL, ADDRESS = "full", "address"  # why admit() refused
ENDED_MAX = 1024


@dataclass
class Unconnected:
    """A visitor's kernel whose page has not connected its channels websocket yet."""

    address: str
    delivered: float | None = None  # when its page was delivered; None while it renders


class Room:
    """Places, owners, kernel restarts and unconnected kernels (see the module docstring)."""

    def __init__(self, kernel_manager, max_visitors: int, grace_s: float = DEFAULT_GRACE_S,
                 per_address: int = DEFAULT_PER_ADDRESS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_visitors < 0 or grace_s < 0 or per_address < 0:
            raise ValueError(f"room limits must be >= 0: max_visitors={max_visitors}, "
                             f"grace_s={grace_s}, per_address={per_address}")
        self.km = kernel_manager
        self.max_visitors = max_visitors  # 0: no cap
        self.grace_s = grace_s  # 0: unconnected kernels stay (until the idle cull)
        self.per_address = per_address  # 0: no limit
        self.clock = clock
        self.owners: dict[str, str] = {}
        # Kernels gone (shut down, culled, died) -> their visitor, so that the page's session
        # poll still answers its owner ("ended": the banner), not 403. The newest ENDED_MAX.
        self.ended: OrderedDict[str, str] = OrderedDict()
        self.restarts: defaultdict[str, int] = defaultdict(int)
        self.pending: defaultdict[str, int] = defaultdict(int)  # address -> pages, no kernel yet
        self.unconnected: dict[str, Unconnected] = {}  # kernel id -> its page's client

    def _alive(self, kernel_id: str) -> bool:
        try:
            return kernel_id in self.km
        except Exception:  # a kernel manager without __contains__
            return kernel_id in self.km.list_kernel_ids()

    def visitors(self) -> int:
        """Kernels that belong to visitors (pooled, preheated kernels do not count)."""
        for kernel_id in [k for k in self.owners if not self._alive(k)]:
            self._forget(kernel_id)
        return len(self.owners)

    def _forget(self, kernel_id: str) -> None:
        owner = self.owners.pop(kernel_id, None)
        if owner is not None:
            self.ended[kernel_id] = owner
            while len(self.ended) > ENDED_MAX:
                self.ended.popitem(last=False)
        self.restarts.pop(kernel_id, None)
        self.unconnected.pop(kernel_id, None)

    def taken(self) -> int:
        """Places taken: visitors' kernels and pages admitted whose kernel is not bound yet."""
        return self.visitors() + sum(self.pending.values())

    def unconnected_from(self, address: str) -> int:
        """Kernels of ``address`` that never connected, and its pages still starting one."""
        self.visitors()  # forget dead kernels first
        return self.pending.get(address, 0) + sum(
            1 for u in self.unconnected.values() if u.address == address)

    def admit(self, address: str) -> str | None:
        """Take a place for a new page from ``address`` (no await in between), or say why
        not: ADDRESS (too many of its pages never connected) or FULL."""
        if self.per_address > 0 and self.unconnected_from(address) >= self.per_address:
            return ADDRESS
        if self.max_visitors > 0 and self.taken() >= self.max_visitors:
            return FULL
        self.pending[address] += 1
        return None

    def leave(self, address: str) -> None:
        """A page admitted from ``address`` got its kernel (or failed): no longer pending."""
        if self.pending.get(address, 0) <= 1:
            self.pending.pop(address, None)
        else:
            self.pending[address] -= 1

    def bind(self, kernel_id: str, visitor: str, address: str) -> None:
        """The kernel now belongs to ``visitor``; it is unconnected until its page connects."""
        self.owners[kernel_id] = visitor
        self.unconnected[kernel_id] = Unconnected(address)

        def restarted() -> None:
            self.restarts[kernel_id] += 1

        for event in ("restart", "dead"):
            try:
                self.km.add_restart_callback(kernel_id, restarted, event)
            except Exception:  # the kernel is already gone: the banner says so anyway
                pass

    def delivered(self, kernel_id: str) -> None:
        """Its page went out: the grace period of an unconnected kernel starts now."""
        waiting = self.unconnected.get(kernel_id)
        if waiting is not None and waiting.delivered is None:
            waiting.delivered = self.clock()

    def connected(self, kernel_id: str) -> None:
        """Its page's channels websocket connected: the place is the visitor's."""
        self.unconnected.pop(kernel_id, None)

    def owner(self, kernel_id: str) -> str | None:
        """The visitor a kernel belongs to, or belonged to before it ended."""
        return self.owners.get(kernel_id) or self.ended.get(kernel_id)

    def expired(self) -> list[str]:
        """Kernels whose page was delivered ``grace_s`` ago or more and never connected."""
        if self.grace_s <= 0:
            return []
        now = self.clock()
        return [k for k, u in self.unconnected.items()
                if u.delivered is not None and now - u.delivered >= self.grace_s]

    async def shut_expired(self, log) -> list[str]:
        """Shut down the expired kernels (the server's timer calls this); their ids."""
        gone = self.expired()
        for kernel_id in gone:
            address = self.unconnected[kernel_id].address
            self._forget(kernel_id)
            log.info("Shut down kernel %s (page for %s): it never connected within %g s",
                     kernel_id, address, self.grace_s)
            try:
                await ensure_async(self.km.shutdown_kernel(kernel_id))
            except Exception as err:  # already gone (its page's beacon, a crash): fine
                log.info("Kernel %s was already gone (%s)", kernel_id, type(err).__name__)
        return gone

    def check_interval_s(self) -> float:
        """How often the server checks for expired kernels: a few times per grace period."""
        return max(0.5, min(5.0, self.grace_s / 4)) if self.grace_s > 0 else 0.0
