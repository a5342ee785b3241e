"""NAS-Bench-201: the cell network as a plain model, its fxnas space, and the benchmark tables.

``build_nb201`` is the ``nb201`` entry of SPACES (a config's ``model: {type: nb201}``).
"""

from . import ops  # noqa: F401  (registers the NB201 candidates)
from .model import (
    CANDIDATE_TO_OP,
    EDGE_PARAMS,
    EDGES,
    NB201_CANDIDATES,
    NB201_OPS,
    OP_TO_CANDIDATE,
    Cell,
    Edge,
    NB201Net,
    build_nb201,
    nb201_space,
    nb201_supernet,
)
from .table import NB201Table, arch_to_str, load_table, str_to_arch

__all__ = [
    "CANDIDATE_TO_OP", "EDGES", "EDGE_PARAMS", "NB201_CANDIDATES", "NB201_OPS", "OP_TO_CANDIDATE", "Cell", "Edge",
    "NB201Net", "NB201Table", "arch_to_str", "build_nb201", "load_table", "nb201_space", "nb201_supernet",
    "str_to_arch",
]

