"""fxnas: neural architecture search as a compiler over torch.fx graphs."""

from __future__ import annotations

from . import components as _components  # noqa: F401  (imports every built-in component: fills the registries)
from .api import searchify
from .elastic import channel_groups, elasticize
from .errors import ConfigError, FxnasError, PatternError, RegistryError, ShapeError, TraceError
from .graph import trace
from .mixed import MIXED_OPS, MixedOp
from .passes.construct import construct, construct_fixed
from .passes.materialize import materialize
from .passes.patterns import PATTERNS, Pattern
from .passes.rewrite import hidden_by_leaves, rewrite
from .profilers.onnx_export import export_onnx
from .profilers.static import profile
from .registry import Registry
from .slot import Slot, SlotSpec
from .space import Categorical, Numerical, SearchSpace, TensorParam
from .supernet import attach_space, mixed_ops, slots, space_of

__version__ = "0.1.0"

__all__ = [
    "Categorical", "ConfigError", "FxnasError", "MIXED_OPS", "MixedOp", "Numerical", "PATTERNS", "Pattern",
    "PatternError", "Registry", "RegistryError", "SearchSpace", "ShapeError", "Slot", "SlotSpec", "TensorParam",
    "TraceError", "attach_space", "channel_groups", "construct", "construct_fixed", "elasticize", "export_onnx",
    "hidden_by_leaves", "materialize", "mixed_ops", "profile", "rewrite", "searchify", "slots", "space_of", "trace",
]
