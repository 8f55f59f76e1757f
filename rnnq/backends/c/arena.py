"""Arena planning: first-fit allocation of byte ranges, released when their owner dies."""

from __future__ import annotations

from collections.abc import Callable

ALIGN = 4


class Arena:
    def __init__(self) -> None:
        self.free: list[tuple[int, int]] = []  # (offset, size), sorted, coalesced
        self.used: dict[object, tuple[int, int]] = {}
        self.top = 0
        self._anon = 0

    def alloc(self, nbytes: int, owner: object | None = None) -> int:
        size = -(-max(nbytes, 1) // ALIGN) * ALIGN
        if owner is None:
            self._anon += 1
            owner = ("scratch", self._anon)
        for i, (off, sz) in enumerate(self.free):
            if sz >= size:
                self.free[i] = (off + size, sz - size)
                self.used[owner] = (off, size)
                return off
        off, self.top = self.top, self.top + size
        self.used[owner] = (off, size)
        return off

    def release_scratch(self) -> None:
        for owner in [o for o in self.used if isinstance(o, tuple) and o[:1] == ("scratch",)]:
            self._release(owner)

    def release_dead(self, dead: Callable[[str], bool]) -> None:
        for owner in [o for o in self.used if isinstance(o, str) and dead(o)]:
            self._release(owner)

    def _release(self, owner: object) -> None:
        off, size = self.used.pop(owner)
        self.free = sorted(self.free + [(off, size)])
        merged: list[tuple[int, int]] = []
        for o, s in self.free:
            if merged and merged[-1][0] + merged[-1][1] == o:
                merged[-1] = (merged[-1][0], merged[-1][1] + s)
            elif s:
                merged.append((o, s))
        self.free = merged
