"""Pipeline configs are checked before anything runs: step types, options, inputs, references, cycles."""

from __future__ import annotations

import pytest

from fxnas.errors import ConfigError
from fxnas.pipeline import load_pipeline
from fxnas.pipeline.graph import run_order, step_graph


def steps(**s):
    return {"name": "p", "steps": s}


@pytest.mark.parametrize("cfg, match", [
    (steps(a={"type": "Serch", "config": "x.yaml"}),
     "steps.a.type: unknown pipeline step 'Serch'; did you mean Search?"),
    (steps(a={"type": "Search", "config": "x.yaml", "overides": []}), "steps.a: Search has no option 'overides'"),
    (steps(a={"type": "Export", "input_shape": [1, 3, 8, 8]}), "steps.a: Export needs 'model'"),
    (steps(a={"type": "Search", "config": "x.yaml"}, b={"type": "Export", "inputs": {"model": "serch.subnet"},
                                                      "input_shape": [1]}), "steps.b.inputs.model: no step 'serch'"),
    (steps(a={"type": "Search", "config": "x.yaml"}, b={"type": "Export", "inputs": {"model": "a.modle"},
                                                      "input_shape": [1]}),
     "steps.b.inputs.model: Search (a) has no output 'modle'"),
    (steps(a={"type": "Search", "config": "x.yaml"}, b={"type": "Export", "inputs": {"modle": "a.subnet"}}),
     "steps.b: Export needs 'model'"),
    (steps(a={"type": "Python", "fn": "f.py:g", "after": ["b"]}, b={"type": "Python", "fn": "f.py:g", "after": ["a"]}),
     "the steps depend on each other in a cycle: a -> b -> a"),
    (steps(a={"type": "Python", "fn": "f.py:g", "inputs": {"args": "params.nope"}}), "params has no output 'nope'"),
    (steps(**{"a.b": {"type": "Python", "fn": "f.py:g"}}), "'a.b' cannot name a step"),
    ({"name": "p", "steps": {}}, "the pipeline needs steps"),
    ({"name": "p", "step": {}}, "unknown key 'step' in the pipeline; did you mean steps?"),
])
def test_bad_pipelines_are_one_line_errors(cfg, match):
    with pytest.raises(ConfigError) as info:
        load_pipeline(cfg)
    assert match in str(info.value) and "\n" not in str(info.value)


def test_order_follows_inputs_and_after():
    cfg = load_pipeline(steps(
        profile={"type": "Python", "fn": "f.py:g", "inputs": {"args": "export"}},
        export={"type": "Python", "fn": "f.py:g", "inputs": {"args": "search.arch"}},
        search={"type": "Python", "fn": "f.py:g"},
        note={"type": "Python", "fn": "f.py:g", "after": ["profile"]}))
    assert run_order(step_graph(cfg["steps"])) == ["search", "export", "profile", "note"]
