"""Training side: offline datasets (DataBundle), criteria chains, trainers and BatchNorm helpers."""

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
    build_criterion,
)
from .data import DATASETS, DataBundle, EpochSampler, build_data, fixed_batches, load_object, set_epoch
from .trainer import TRAINERS, Classification, Regression, Trainer, build_trainer, to_device

__all__ = [
    "CRITERIA", "DATASETS", "MSE", "TRAINERS", "Auxiliary", "Classification", "Criterion", "CriterionChain",
    "CrossEntropy", "DataBundle", "Distillation", "EpochSampler", "LabelSmoothing", "Regression", "Trainer",
    "bn_state", "build_criteria", "build_criterion", "build_data", "build_trainer", "fixed_batches", "load_bn_state",
    "load_object",
    "recalibrate_bn", "set_epoch", "to_device",
]
