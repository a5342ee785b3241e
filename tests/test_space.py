"""SearchSpace: params, sampling, validation, update events with handler priorities, state."""

from __future__ import annotations

import math
import random

import pytest
import torch

from fxnas.errors import ConfigError
from fxnas.space import Categorical, Numerical, SearchSpace, TensorParam


def make() -> SearchSpace:
    s = SearchSpace()
    s.add(Categorical("op", ["A", "B", "C"]))
    s.add(Numerical("width", 1, 4, integer=True))
    return s


def test_size_sample_and_validate() -> None:
    s = make()
    assert s.size() == 12
    archs = [s.sample(i) for i in range(50)]
    assert {a["op"] for a in archs} == {"A", "B", "C"} and {a["width"] for a in archs} == {1, 2, 3, 4}
    assert s.sample(3) == s.sample(random.Random(3))
    assert s.validate({"op": 1}) == {"op": "B"}  # an index into named choices
    with pytest.raises(ConfigError, match="not a valid value for 'op'; valid: \\['A', 'B', 'C'\\]"):
        s.validate({"op": "D"})
    with pytest.raises(ConfigError, match="outside"):
        s.validate({"width": 9})
    with pytest.raises(ConfigError, match="no param 'depth'"):
        s.validate({"depth": 1})
    with pytest.raises(ConfigError, match="missing"):
        s.validate({"op": "A"}, complete=True)
    s.add(Numerical("lr", 0.1, 1.0))
    assert math.isinf(s.size())


def test_shared_params_and_conflicts() -> None:
    s = make()
    assert s.add(Categorical("op", ["A", "B", "C"])) is s["op"]
    with pytest.raises(ConfigError, match="declared twice"):
        s.add(Categorical("op", ["A", "B"]))


def test_apply_emits_events_by_priority_and_target() -> None:
    s = make()
    calls: list[tuple[str, dict]] = []
    target = object()
    s.on("op", lambda v: calls.append(("op", dict(v))), target=target)
    s.on(["op", "width"], lambda v: calls.append(("both", dict(v))), target=target)  # more params: wins
    s.on("width", lambda v: calls.append(("width", dict(v))))
    s.apply({"op": "C", "width": 2})
    # the op target runs only its highest-priority handler; the untargeted width handler runs too
    assert calls == [("both", {"op": "C", "width": 2}), ("width", {"width": 2})]
    calls.clear()
    s.apply({"width": 3})
    assert [c[0] for c in calls] == ["both", "width"]
    assert s.current() == {"op": "C", "width": 3}


def test_tensor_params_derive_and_state() -> None:
    s = make()
    t = s.add(TensorParam("op.alpha", (3,), categorical="op"))
    assert s.arch_parameters() == [t.value] and "op.alpha" not in s.discrete()
    with torch.no_grad():
        t.value.copy_(torch.tensor([0.0, 5.0, 1.0]))
    assert s.derive()["op"] == "B"
    state = s.state_dict()
    other = make()
    other.add(TensorParam("op.alpha", (3,), categorical="op"))
    other.load_state_dict(state)
    torch.testing.assert_close(other["op.alpha"].value, t.value)
    with pytest.raises(ConfigError, match="shape"):
        t.validate(torch.zeros(2))
    assert s.describe()["op.alpha"] == {"type": "tensor", "shape": [3]}
