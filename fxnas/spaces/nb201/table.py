"""NAS-Bench-201 tables: arch dict ⇄ NB201 string, and metric lookup from the shared CSV files."""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ...errors import ConfigError, FxnasError
from .model import CANDIDATE_TO_OP, EDGE_PARAMS, EDGES, NB201_OPS, NUM_NODES, OP_TO_CANDIDATE

ENV_VAR = "FXNAS_NB201_DIR"
FILES = ("nb201_12epoch.csv", "nb201_200epoch.csv")
SEARCH_METRIC = "cifar10_valid_12ep"  # the search signal of the NB201 paper
FINAL_METRIC = "cifar10_test_200ep"  # what a found arch is scored by


def arch_to_str(arch: Mapping[str, Any]) -> str:
    """The standard NB201 string of an arch ``{edge0..edge5: candidate or NB201 op name}``."""
    ops = []
    for k in EDGE_PARAMS:
        if k not in arch:
            raise ConfigError(f"NB201 arch needs params {list(EDGE_PARAMS)}; missing {k!r}")
        v = arch[k]
        op = CANDIDATE_TO_OP.get(v, v if v in NB201_OPS else None)
        if op is None:
            raise ConfigError(f"{v!r} on {k} is not an NB201 op; valid: {list(CANDIDATE_TO_OP)} or {list(NB201_OPS)}")
        ops.append(op)
    groups, k = [], 0
    for j in range(1, NUM_NODES):
        groups.append("|" + "|".join(f"{ops[k + i]}~{i}" for i in range(j)) + "|")
        k += j
    return "+".join(groups)


def str_to_arch(s: str) -> dict[str, str]:
    """The arch dict (candidate names) of an NB201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    groups = s.strip().split("+")
    if len(groups) != NUM_NODES - 1:
        raise ConfigError(f"NB201 string {s!r} needs {NUM_NODES - 1} '+'-separated nodes, got {len(groups)}")
    arch: dict[str, str] = {}
    k = 0
    for j, g in enumerate(groups, start=1):
        if not (g.startswith("|") and g.endswith("|")):
            raise ConfigError(f"NB201 node {g!r} in {s!r} must look like |op~0|op~1|")
        items = g[1:-1].split("|")
        if len(items) != j:
            raise ConfigError(f"NB201 node {j} in {s!r} needs {j} inputs, got {len(items)}")
        for i, item in enumerate(items):
            op, _, src = item.partition("~")
            if op not in OP_TO_CANDIDATE or src != str(i):
                raise ConfigError(f"bad NB201 edge {item!r} in {s!r}: expected <op>~{i} with op in {list(NB201_OPS)}")
            arch[EDGE_PARAMS[k]] = OP_TO_CANDIDATE[op]
            k += 1
    assert k == len(EDGES)
    return arch


def table_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The NB201 table folder: ``path``, else $FXNAS_NB201_DIR, else ``../shared/data/nasbench201`` of the repo."""
    if path is not None:
        cands = [Path(path)]
    elif os.environ.get(ENV_VAR):
        cands = [Path(os.environ[ENV_VAR])]
    else:
        repo = Path(__file__).resolve().parents[3]
        cands = [repo.parent / "shared" / "data" / "nasbench201", Path.cwd().parent / "shared/data/nasbench201"]
    for d in cands:
        if all((d / f).is_file() for f in FILES):
            return d
    raise FxnasError(f"NAS-Bench-201 tables ({', '.join(FILES)}) not found in {', '.join(map(str, cands))}; "
                     f"set {ENV_VAR} to the folder holding them (they are not shipped with fxnas)")


class NB201Table:
    """Metrics of all 15,625 NB201 cells, keyed by NB201 string (both CSV files merged on ``index``)."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = table_dir(folder)
        self.rows: dict[str, dict[str, float]] = {}
        self.index: dict[str, int] = {}
        by_index: dict[int, str] = {}
        self.metrics: list[str] = []
        for fname in FILES:
            with open(self.folder / fname, newline="") as f:
                reader = csv.DictReader(f)
                cols = [c for c in (reader.fieldnames or []) if c not in ("index", "arch")]
                self.metrics += cols
                for row in reader:
                    i, s = int(row["index"]), row["arch"]
                    if by_index.setdefault(i, s) != s:
                        raise FxnasError(f"NB201 tables disagree on index {i}: {by_index[i]!r} vs {s!r}")
                    self.index[s] = i
                    self.rows.setdefault(s, {}).update({c: float(row[c]) for c in cols})

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def lookup(self, arch: Mapping[str, Any] | str) -> dict[str, float]:
        """Every metric of ``arch`` (an arch dict or NB201 string)."""
        s = arch if isinstance(arch, str) else arch_to_str(arch)
        try:
            return dict(self.rows[s])
        except KeyError:
            raise ConfigError(f"arch {s!r} is not in the NB201 table") from None

    def best(self, metric: str = FINAL_METRIC) -> tuple[str, float]:
        """(NB201 string, value) of the arch with the highest ``metric``."""
        if metric not in self.metrics:
            raise ConfigError(f"unknown NB201 metric {metric!r}; valid: {self.metrics}")
        s = max(self.rows, key=lambda k: self.rows[k][metric])
        return s, self.rows[s][metric]


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> NB201Table:
    return NB201Table(folder)


def load_table(folder: str | os.PathLike[str] | None = None) -> NB201Table:
    """The NB201 table of ``folder`` (see table_dir), parsed once per folder and shared read-only."""
    return _load(str(table_dir(folder)))
