"""Ready-made search spaces built from ordinary models by fxnas's passes: DARTS cells, NAS-Bench-201.

Importing this package registers them in SPACES (``model: {type: darts | nb201 | tiny_net | space_file}``).
"""

from . import nb201  # noqa: F401  (registers nb201 and its candidates)
from .darts import DartsNetwork, darts_derive, darts_supernet, genotype
from .registry import SPACES, model_builder

__all__ = ["SPACES", "DartsNetwork", "darts_derive", "darts_supernet", "genotype", "model_builder"]
