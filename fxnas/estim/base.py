"""Estimator base: an estimation strategy drives the loop for its kind of search and returns Results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..registry import Registry

if TYPE_CHECKING:
    from ..optim.base import Result
    from ..routine import Experiment

ESTIMATORS = Registry("estimator")


class Estimator:
    """Estimation strategy (ω, η): trains/evaluates under the experiment's optimizer, returns Results."""

    # True when the evaluate function it hands to exp.evaluate_loop is picklable and independent of the
    # experiment's live supernet/RNG, so a dask cluster may run it in other processes or threads
    parallel_safe: bool = False

    def __init__(self, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unknown options {sorted(kwargs)}")

    def run(self, exp: Experiment) -> list[Result]:
        """Run this stage of the search on ``exp`` (resuming from exp's checkpoint state)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Progress of this stage, for checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore progress saved by state_dict."""
