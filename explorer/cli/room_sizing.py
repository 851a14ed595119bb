"""How big a room `explorer dashboard` serves by default, and how its token travels.

Defaults come from the machine's total memory and cores (not what is free right now, so
they do not swing with other programs); the token reaches the server through a pipe or a
file readable only by its owner, never an environment or a command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MIB_PER_VISITOR = 600  # an idle visitor's kernel holds about 450 MiB; leave room to train


def _memory_mib() -> int | None:
    """MemTotal from /proc/meminfo in MiB (None where there is no such file). The total, not
    what is free right now, so that the defaults do not swing with other programs."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_preheat() -> int:
    """Kernels kept warm by default: one per two cores, at most 4, as memory allows."""
    cpus = os.cpu_count() or 1
    mib = _memory_mib()
    by_memory = 4 if mib is None else mib // (3 * MIB_PER_VISITOR)
    return max(1, min(4, cpus // 2, by_memory))


def default_max_visitors() -> int:
    """Visitors at once by default: what three quarters of the memory holds (4..64)."""
    mib = _memory_mib()
    return 16 if mib is None else max(4, min(64, 3 * mib // (4 * MIB_PER_VISITOR)))


def kernel_threads(max_visitors: int) -> int:
    """torch threads per kernel, so that ``max_visitors`` kernels share the cores."""
    cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, min(cpus, max_visitors)))


def token_pipe(token: str) -> int:
    """A pipe holding ``token``; returns its read end (inheritable, for one child)."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as pipe:
        pipe.write(token.encode("utf-8"))  # far below the pipe's buffer: never blocks
    os.set_inheritable(read_fd, True)
    return read_fd


def read_token_file(path: str) -> str:
    """The token in the file at ``path`` (which should be readable only by its owner)."""
    file = Path(path).expanduser()
    text = file.read_text(encoding="utf-8").strip()
    if file.stat().st_mode & 0o077:
        print(f"explorer dashboard: warning: {file} is readable by other users "
              f"(chmod 600 {file})", file=sys.stderr)
    return text
