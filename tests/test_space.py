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


def test_apply_sets_the_shared_params_and_validates_first() -> None:
    s = make()
    op = s["op"]  # what a module keeps: the Param object itself
    s.apply({"op": "C", "width": 2})
    assert op.value == "C" and s.current() == {"op": "C", "width": 2}
    with pytest.raises(ConfigError):
        s.apply({"width": 3, "op": "Z"})  # one bad value: nothing changes
    assert s.current() == {"op": "C", "width": 2}


def test_space_is_plain_data_that_pickles_with_its_supernet() -> None:
    import copy
    import pickle

    import fxnas

    s = make()
    s.add(TensorParam("op.alpha", (3,), categorical="op"))
    s.apply({"op": "B"})
    back = pickle.loads(pickle.dumps(s))
    assert back.current() == s.current() and back.derive_rule == "argmax"
    torch.testing.assert_close(back["op.alpha"].value, s["op.alpha"].value)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    sn = fxnas.searchify(net, "conv3x3", ["NC3", "DW3"], torch.randn(1, 3, 8, 8))
    for twin in (copy.deepcopy(sn), pickle.loads(pickle.dumps(sn))):  # the copy's ops read the copy's space
        twin.space.apply({"0": "DW3"})
        assert fxnas.mixed_ops(twin)["0"].chosen_name() == "DW3"
        assert fxnas.mixed_ops(sn)["0"].chosen_name() == "NC3"


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
