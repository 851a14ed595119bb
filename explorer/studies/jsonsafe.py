"""Report values as JSON allows them (torch-free: the command line imports it early)."""

from __future__ import annotations

import math
from typing import Any


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity and only string keys: write them as null and str."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
