"""A slot's quantization setting (explorer.session.quant applies it): a plain value, below
the slots and the quantization code so that both, and the undo entry, can name it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

QUANT_UNKNOWN = "unknown"  # an undo entry saved without its setting: Undo keeps today's
OFF = 32  # bits that leave a layer in float
LAYER_KINDS = ("conv", "linear", "embedding")  # what a per-layer bits mapping may name


@dataclass(frozen=True)
class QuantSetting:
    """Bits per weight (one width, or per layer: sorted (layer name or kind, bits)
    pairs, a name winning over a kind), scheme and (uniform only) the input group size."""

    bits: int | tuple[tuple[str, int], ...]
    scheme: str = "kmeans"
    group_size: int | None = None

    def layer_bits(self, name: str, kind: str) -> int:
        """The width of layer `name` (parameter name) of kind `kind`; 32 leaves it float."""
        if isinstance(self.bits, int):
            return self.bits
        widths = dict(self.bits)
        if name in widths or kind in widths:
            return widths.get(name, widths.get(kind, OFF))
        raise ValueError(f"bits={widths!r} gives layer {name!r} ({kind}) no width: name it "
                         f"or its kind ({', '.join(LAYER_KINDS)}); 32 leaves it in float")

    def payload(self) -> dict:
        """asdict with a per-layer width as a dict (what a saved session and the app get)."""
        bits = self.bits if isinstance(self.bits, int) else dict(self.bits)
        return {**asdict(self), "bits": bits}

    def label(self) -> str:
        group = f", groups of {self.group_size}" if self.group_size else ""
        if isinstance(self.bits, int):
            return f"{self.scheme} {self.bits}-bit{group}"
        widths = ", ".join(f"{key} {b}" for key, b in self.bits)
        return f"{self.scheme} bits {widths}{group}"
