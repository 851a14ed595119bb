"""How a zoo model describes its coupled channels, for structured pruning.

A model says which output channels go together and who reads them; the engine
(explorer.engine.structure) ranks, masks and removes them. Keeping the description
here lets models stay free of the engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """Output channels removed together, with everything that writes or reads them."""

    name: str
    producers: tuple[str, ...]  # Linear/Conv modules whose output channels these are
    norms: tuple[str, ...]  # BatchNorm modules on these channels
    consumers: tuple[tuple[str, int], ...]  # (module, inputs per channel: 1, or H*W)
