"""Candidate ops, each built from a SlotSpec alone; importing this package registers them."""

from . import blocks, darts_ops, hierarchical, mobilenetv3, ops  # noqa: F401  (register the candidates)
from .registry import CANDIDATES, build_candidate

__all__ = ["CANDIDATES", "build_candidate"]
