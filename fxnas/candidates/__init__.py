"""Candidate ops, each built from a SlotSpec alone; importing this package registers them."""

from . import (  # noqa: F401  (register the candidates)
    blocks,
    darts_ops,
    hierarchical,
    mbv3_variants,
    mobilenetv3,
    ops,
    pools,
    sepconvs,
    shufflenet,
    transformer,
)
from .registry import CANDIDATES, build_candidate

__all__ = ["CANDIDATES", "build_candidate"]
