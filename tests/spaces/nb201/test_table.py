"""NB201 tables: string ⇄ arch both ways, every table string parses, lookups, where the tables are found."""

from __future__ import annotations

import itertools
import random

import pytest

from fxnas.errors import ConfigError, FxnasError
from fxnas.spaces.nb201 import EDGE_PARAMS, NB201_CANDIDATES, arch_to_str, load_table, nb201_space, str_to_arch
from fxnas.spaces.nb201.table import FINAL_METRIC, SEARCH_METRIC, NB201Table, table_dir

README_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def table() -> NB201Table:
    return load_table()


def test_string_to_arch_known_example():
    arch = str_to_arch(README_EXAMPLE)
    assert arch == {"edge0": "RCB3", "edge1": "RCB3", "edge2": "AVG3P", "edge3": "IDT", "edge4": "RCB3",
                    "edge5": "IDT"}
    assert arch_to_str(arch) == README_EXAMPLE
    assert arch_to_str({**arch, "edge0": "nor_conv_3x3"}) == README_EXAMPLE  # NB201 op names work too


def test_round_trip_every_arch_of_the_space():
    archs = [dict(zip(EDGE_PARAMS, ops)) for ops in itertools.product(NB201_CANDIDATES, repeat=6)]
    strings = {arch_to_str(a) for a in archs}
    assert len(strings) == 5 ** 6
    for a in random.Random(0).sample(archs, 500):
        assert str_to_arch(arch_to_str(a)) == a


@pytest.mark.nb201
def test_every_table_string_parses_and_covers_the_space(table):
    assert len(table) == 15625
    for s in table:
        arch = str_to_arch(s)
        assert arch_to_str(arch) == s
        assert nb201_space().validate(arch, complete=True) == arch
    archs = {arch_to_str(dict(zip(EDGE_PARAMS, ops))) for ops in itertools.product(NB201_CANDIDATES, repeat=6)}
    assert archs == set(table)


@pytest.mark.parametrize("bad", [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",  # two nodes only
    README_EXAMPLE.replace("avg_pool_3x3~1", "max_pool_3x3~1"),  # unknown op
    README_EXAMPLE.replace("skip_connect~2", "skip_connect~1"),  # wrong input node
    README_EXAMPLE.replace("|+|", "+"),
])
def test_bad_strings_raise(bad):
    with pytest.raises(ConfigError):
        str_to_arch(bad)


def test_bad_arch_dict_raises():
    with pytest.raises(ConfigError, match="edge5"):
        arch_to_str({k: "IDT" for k in EDGE_PARAMS[:5]})
    with pytest.raises(ConfigError, match="NC3"):
        arch_to_str({**{k: "IDT" for k in EDGE_PARAMS}, "edge2": "NC3"})


@pytest.mark.nb201
def test_lookup_and_best(table):
    row = table.lookup(README_EXAMPLE)
    assert row[SEARCH_METRIC] == pytest.approx(82.834) and row[FINAL_METRIC] == pytest.approx(93.66)
    assert table.lookup(str_to_arch(README_EXAMPLE)) == row
    assert table.index[README_EXAMPLE] == 1
    s, v = table.best(FINAL_METRIC)
    assert v == pytest.approx(94.3733) and v == max(table.lookup(a)[FINAL_METRIC] for a in table)
    with pytest.raises(ConfigError, match="valid"):
        table.best("imagenet_top5")


@pytest.mark.nb201
def test_table_location(monkeypatch, tmp_path):
    d = table_dir()
    monkeypatch.setenv("FXNAS_NB201_DIR", str(d))
    assert table_dir() == d
    monkeypatch.setenv("FXNAS_NB201_DIR", str(tmp_path))
    with pytest.raises(FxnasError, match="FXNAS_NB201_DIR"):
        table_dir()
    with pytest.raises(FxnasError, match="not found"):
        NB201Table(tmp_path)


@pytest.mark.nb201
def test_benchmark_script_runs(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "benchmarks" / "nb201_search.py"
    spec = importlib.util.spec_from_file_location("nb201_search", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--seeds", "4", "--smbo-seeds", "1", "--budget", "30",
                    "--methods", "Random,RegularizedEvolution,ModelBased"])
    assert set(out) == {"Random", "RegularizedEvolution", "ModelBased"}
    for mean, std, n, _ in out.values():
        assert 85.0 < mean <= 94.3733 + 1e-9 and std >= 0 and n in (1, 4)
    assert "RegularizedEvolution" in capsys.readouterr().out
