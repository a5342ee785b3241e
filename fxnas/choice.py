"""The contract of modules that stand for a choice of a search space."""

from __future__ import annotations

from torch import nn


class ChoiceModule(nn.Module):
    """A module whose computation depends on search-space params (it keeps the Param objects and reads
    ``param.value`` when it runs). ``materialize()`` returns the plain torch module that computes the same
    for the params' current values; the materialize pass calls it on every ChoiceModule, outermost first.
    """

    def materialize(self) -> nn.Module:
        """The standalone module for the current param values (copied weights, no search machinery)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement materialize()")
