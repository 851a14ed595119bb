"""A slot's quantization setting (explorer.session.quant applies it): a plain value, below
the slots and the quantization code so that both, and the undo entry, can name it."""

from __future__ import annotations

from dataclasses import dataclass

QUANT_UNKNOWN = "unknown"  # an undo entry saved without its setting: Undo keeps today's


@dataclass(frozen=True)
class QuantSetting:
    """Bits per weight, scheme and (uniform only) the input group size."""

    bits: int
    scheme: str = "kmeans"
    group_size: int | None = None

    def label(self) -> str:
        group = f", groups of {self.group_size}" if self.group_size else ""
        return f"{self.scheme} {self.bits}-bit{group}"
