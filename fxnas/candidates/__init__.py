"""Candidate ops and mixed ops; importing this package registers them."""

from . import blocks, ops  # noqa: F401
from .mixed import MIXED_OPS, IndexMixedOp, MixedOp, SoftmaxSumMixedOp
from .registry import CANDIDATES, build_candidate

__all__ = ["CANDIDATES", "MIXED_OPS", "IndexMixedOp", "MixedOp", "SoftmaxSumMixedOp", "build_candidate"]
from . import darts_ops, hierarchical, mixed_gradient, mobilenetv3  # noqa: F401,E402  (one-shot candidates, mixed ops)
