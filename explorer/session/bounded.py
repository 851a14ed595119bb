"""A list that forgets its oldest entries, so nothing a long session keeps grows forever.

The undo stack holds a whole model state per job and the history a record per epoch
(and a Snapshot per iterative step); an afternoon of clicking must not exhaust memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from ..config import HISTORY_MAX

T = TypeVar("T")


class BoundedList(list[T]):
    """list whose append/extend/insert drop the oldest items beyond `limit`."""

    def __init__(self, items: Iterable[T] = (), limit: int = HISTORY_MAX) -> None:
        super().__init__(items)
        self.limit = limit
        self._trim()

    def _trim(self) -> None:
        if len(self) > self.limit:
            del self[: len(self) - self.limit]

    def append(self, item: T) -> None:
        super().append(item)
        self._trim()

    def extend(self, items: Iterable[T]) -> None:
        super().extend(items)
        self._trim()

    def insert(self, index, item: T) -> None:  # type: ignore[override]
        super().insert(index, item)
        self._trim()
