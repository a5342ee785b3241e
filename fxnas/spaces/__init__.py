"""Ready-made search spaces built from ordinary models by fxnas's passes (``fxnas.spaces.darts``...)."""

from .darts import DartsNetwork, darts_derive, darts_supernet, genotype

__all__ = ["DartsNetwork", "darts_derive", "darts_supernet", "genotype"]
