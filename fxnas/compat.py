"""The private APIs of torch (and Optuna) fxnas relies on, each behind one name here (tests/test_compat.py
checks each shim).

torch.fx and torch.nn keep some useful pieces private; when a torch release moves one, this file is the one
place to change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch.fx as fx
from torch import nn
from torch.fx.graph_module import _USER_PRESERVED_ATTRIBUTES_KEY

PRESERVED_ATTRIBUTES_KEY = _USER_PRESERVED_ATTRIBUTES_KEY
"""``GraphModule.meta[key]``: attributes a GraphModule copies onto its deepcopies (a supernet's ``.space``)."""

ConvNd = nn.modules.conv._ConvNd
"""The base of Conv1d/2d/3d and their transposed forms."""

BatchNormBase = nn.modules.batchnorm._BatchNorm
"""The base of BatchNorm1d/2d/3d and SyncBatchNorm (modules with running statistics)."""


def fake_tensor_mode() -> Any:
    """A FakeTensorMode that accepts real inputs (shape inference for forwards that make CPU tensors)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode(allow_non_fake_inputs=True)


def own_tensors(module: nn.Module) -> Iterator[tuple[dict[str, Any], str, Any]]:
    """(store, name, tensor) of the parameters and buffers a module holds itself (not its children's); the
    store is the module's own dict, so an assignment to it swaps the tensor without registration checks."""
    for store in (module._parameters, module._buffers):
        for k, v in store.items():
            yield store, k, v


def forget_tracer_class(graph: fx.Graph) -> None:
    """Drop the tracer class a graph remembers, so a pickled GraphModule does not import it on load."""
    graph._tracer_cls = None


def optuna_trial_id(trial: Any) -> int:
    """The storage id of an Optuna trial (a FrozenTrial or Trial), which ``optuna.Trial(study, id)`` takes to
    reach a running trial from another process; Optuna exposes only the per-study number publicly."""
    return int(trial._trial_id)
