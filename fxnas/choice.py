"""ChoiceModule: the base of every fxnas module that stands for a choice of the search space.

Slots, mixed ops and elastic ops are ChoiceModules. The materialize pass is generic over them: it replaces
each one, outermost first, by what ``materialize()`` returns for the current values of its params, until no
ChoiceModule is left, then inlines the rest into plain torch ops.
"""

from __future__ import annotations

from torch import nn


class ChoiceModule(nn.Module):
    """A module whose computation depends on search-space params; ``materialize()`` fixes it to plain torch.

    Contract::

        forward(*args)          what the supernet computes for the params' current values
        materialize()           the plain module (no ChoiceModule outside its own inner choices) computing the
                                same as forward for the current values; called after space.apply(arch)
    """

    def materialize(self) -> nn.Module:
        """The plain torch module this choice stands for under the current param values."""
        raise NotImplementedError(f"{type(self).__name__} does not say how it materialises")
