"""Index (SPOS, discrete search): the mixed op that runs only the selected candidate."""

from __future__ import annotations

from .base import MIXED_OPS, MixedOp


@MIXED_OPS.register("Index")
class IndexMixedOp(MixedOp):
    """SPOS / discrete search: runs only the selected candidate (``param.value``)."""
