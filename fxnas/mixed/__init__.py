"""Mixed operators: what the constructor pass lowers each slot into; importing this package registers them."""

from .base import MIXED_OPS, MixedOp, arch_step, fixed_arch, model_mixed_ops, set_temperature, weighted_sum
from .binary_gate import BinaryGate, BinaryGateGrad, BinaryGateMixedOp, BinaryGateUniform, rescale
from .gumbel import GumbelSum
from .index import IndexMixedOp
from .softmax import SoftmaxSumMixedOp

__all__ = [
    "MIXED_OPS", "BinaryGate", "BinaryGateGrad", "BinaryGateMixedOp", "BinaryGateUniform", "GumbelSum",
    "IndexMixedOp", "MixedOp", "SoftmaxSumMixedOp", "arch_step", "fixed_arch", "model_mixed_ops", "rescale",
    "set_temperature", "weighted_sum",
]
