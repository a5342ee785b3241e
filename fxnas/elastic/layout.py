"""Channel layouts: where a tensor's channels come from (analysis) and how many of each run (runtime)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Seg:
    """Channels ``[start, start + length)`` of one source (a layer's output, the model input, a constant)."""

    src: int
    start: int
    length: int


@dataclass(frozen=True)
class Layout:
    """The channel dim of a tensor during the analysis: a concatenation of source segments.

    ``dim`` is the (non-negative) axis that holds the channels; ``inner`` is how many consecutive elements
    of that axis each channel spans (more than 1 once spatial dims are flattened into it before a linear).
    """

    dim: int
    segs: tuple[Seg, ...]
    inner: int = 1

    @property
    def channels(self) -> int:
        """Number of channels (the axis size divided by ``inner``)."""
        return sum(s.length for s in self.segs)

    def at(self, dim: int) -> Layout:
        """The same channels on another axis (after a permute, a broadcast or a reduction)."""
        return Layout(dim, self.segs, self.inner)

    def with_inner(self, inner: int) -> Layout:
        """The same channels, each spanning ``inner`` elements of the axis."""
        return Layout(self.dim, self.segs, inner)

    def slice(self, start: int, length: int) -> Layout:
        """Channels ``[start, start + length)`` of this layout (in channel units)."""
        out: list[Seg] = []
        pos = 0
        for s in self.segs:
            lo, hi = max(start, pos), min(start + length, pos + s.length)
            if lo < hi:
                out.append(Seg(s.src, s.start + lo - pos, hi - lo))
            pos += s.length
        return Layout(self.dim, tuple(out), self.inner)

    def chunks(self, n: int) -> list[Layout]:
        """``n`` equal slices (a grouped conv's or a GroupNorm's groups)."""
        size = self.channels // n
        return [self.slice(i * size, size) for i in range(n)]


def concat(layouts: list[Layout], dim: int) -> Layout:
    """Layouts placed one after the other on ``dim`` (a ``cat``); they must share ``inner``."""
    segs: tuple[Seg, ...] = ()
    for lay in layouts:
        segs += lay.segs
    return Layout(dim, segs, layouts[0].inner if layouts else 1)


# --- runtime ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """``length`` channels of one group; ``param`` names the group's width param (None: always all kept)."""

    length: int
    param: str | None = None


@dataclass(frozen=True)
class Channels:
    """The channels of a layer's input or output as parts of groups, in order.

    At a setting, each part keeps its first ``values[param]`` channels (importance ordering puts the kept
    ones first), so the running tensor holds the concatenation of those prefixes.
    """

    parts: tuple[Part, ...]
    inner: int = 1

    @property
    def full(self) -> int:
        """Channels at the largest setting."""
        return sum(p.length for p in self.parts)

    def params(self) -> set[str]:
        """Names of the width params these channels depend on."""
        return {p.param for p in self.parts if p.param is not None}

    def kept(self, values: Mapping[str, Any]) -> list[int]:
        """Channels each part keeps at ``values``."""
        return [p.length if p.param is None else int(values[p.param]) for p in self.parts]

    def count(self, values: Mapping[str, Any]) -> int:
        """Channels kept at ``values``."""
        return sum(self.kept(values))

    def ranges(self, values: Mapping[str, Any]) -> list[tuple[int, int]]:
        """Kept ``(start, stop)`` element ranges of the full axis (``inner`` applied), adjacent ones merged."""
        out: list[tuple[int, int]] = []
        pos = 0
        for p, k in zip(self.parts, self.kept(values)):
            lo, hi = pos * self.inner, (pos + k) * self.inner
            if hi > lo:
                if out and out[-1][1] == lo:
                    out[-1] = (out[-1][0], hi)
                else:
                    out.append((lo, hi))
            pos += p.length
        return out

    def chunk(self, n: int) -> Channels:
        """The first of ``n`` equal chunks (each chunk of a grouped layer has the same parts)."""
        size, pos, parts = self.full // n, 0, []
        for p in self.parts:
            if pos >= size:
                break
            parts.append(p)
            pos += p.length
        if pos != size:
            raise ValueError(f"{n} chunks of {self.full} channels do not align with parts {self.parts}")
        return Channels(tuple(parts), self.inner)

    def is_elastic(self) -> bool:
        """Whether any part can shrink."""
        return any(p.param is not None for p in self.parts)
