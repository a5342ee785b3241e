"""Training side: offline datasets (DataBundle), data order, criteria chains, trainers and BatchNorm helpers."""

from .bn import bn_state, load_bn_state, recalibrate_bn
from .criteria import (
    CRITERIA,
    MSE,
    Auxiliary,
    Criterion,
    CriterionChain,
    CrossEntropy,
    Distillation,
    LabelSmoothing,
    build_criteria,
)
from .datasets import DATASETS, DataBundle
from .metric_losses import AddMetrics, MultLogMetrics, MultMetrics
from .mixup import MixUp
from .sampling import EpochSampler, fixed_batches, set_epoch
from .trainer import TRAINERS, Classification, Regression, Trainer, to_device

__all__ = [
    "CRITERIA", "DATASETS", "MSE", "TRAINERS", "AddMetrics", "Auxiliary", "Classification", "Criterion",
    "CriterionChain", "CrossEntropy", "DataBundle", "Distillation", "EpochSampler", "LabelSmoothing", "MixUp",
    "MultLogMetrics", "MultMetrics", "Regression", "Trainer",
    "bn_state", "build_criteria", "fixed_batches", "load_bn_state", "recalibrate_bn", "set_epoch", "to_device",
]
