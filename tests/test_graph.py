"""trace(): fresh copy, shapes on every node, leaf modules, and TraceErrors that say where and what to do."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.fx as fx
from conftest import randomize_bn
from torch import nn

import fxnas
from fxnas.graph import input_shape, node_shape
from fxnas.modelfile import load_model

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


class Gate(nn.Module):
    """Data-dependent control flow: cannot be traced symbolically."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # GATE-LINE
            return self.lin(x)
        return -x


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Linear(4, 4)
        self.body = nn.Sequential(nn.ReLU(), Gate())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.pre(x))


class Flagged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, double: bool = False) -> torch.Tensor:
        y = self.lin(x)
        if double:
            y = y * 2
        return y


def test_trace_matches_eager_and_has_shapes() -> None:
    m = randomize_bn(load_model(TINY)).eval()
    x = torch.randn(2, 3, 32, 32)
    gm = fxnas.trace(m, x)
    assert isinstance(gm, fx.GraphModule)
    torch.testing.assert_close(gm(x), m(x))
    for n in gm.graph.nodes:
        if n.op in ("placeholder", "call_module", "call_function", "call_method"):
            assert node_shape(n) is not None, n
    by_target = {n.target: n for n in gm.graph.nodes if n.op == "call_module"}
    assert node_shape(by_target["res2.conv1"]) == (2, 32, 16, 16)
    assert input_shape(by_target["res2.conv1"]) == (2, 16, 32, 32)
    cat = next(n for n in gm.graph.nodes if n.target is torch.cat)
    assert node_shape(cat) == (2, 32, 16, 16)


def test_trace_works_on_a_copy() -> None:
    m = load_model(TINY)
    gm = fxnas.trace(m, torch.randn(1, 3, 16, 16))
    with torch.no_grad():
        gm.get_submodule("stem.0").weight.zero_()
    assert m.stem[0].weight.abs().sum() > 0
    assert gm.training == m.training


def test_leaf_modules_stay_calls() -> None:
    from fxnas.modelfile import import_model_file

    mod = import_model_file(TINY)
    m = mod.build()
    gm = fxnas.trace(m, torch.randn(1, 3, 16, 16), leaf_modules=[mod.ResBlock])
    targets = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert "res1" in targets and "res1.conv1" not in targets
    plain = fxnas.trace(m, torch.randn(1, 3, 16, 16))
    assert "res1.conv1" in [n.target for n in plain.graph.nodes if n.op == "call_module"]


def test_data_dependent_control_flow_names_submodule_and_line() -> None:
    with pytest.raises(fxnas.TraceError) as ei:
        fxnas.trace(Outer(), torch.randn(2, 4))
    msg = str(ei.value)
    line = next(i for i, s in enumerate(inspect.getsource(Gate).splitlines()) if "GATE-LINE" in s)
    lineno = inspect.getsourcelines(Gate)[1] + line
    assert "in module 'body.1' (Gate)" in msg
    assert f"test_graph.py:{lineno}" in msg and "if x.sum() > 0" in msg
    assert "leaf_modules=[Gate]" in msg and "concrete_args" in msg
    assert "\n" not in msg


def test_leaf_fix_suggested_by_the_error_works() -> None:
    m = Outer().eval()
    x = torch.randn(2, 4)
    gm = fxnas.trace(m, x, leaf_modules=[Gate])
    torch.testing.assert_close(gm(x), m(x))


class DataBranch(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:  # an optional input no one feeds: folded to None, as the eager call runs
            x = x * mask
        return x * 2 if x.sum() > 0 else x  # data-dependent: no tracer option but meta/leaf helps


def test_concrete_args_steer_control_flow() -> None:
    m = Flagged()
    x = torch.randn(2, 4)
    gm = fxnas.trace(m, x)  # an unfed bool flag is fixed to its default
    torch.testing.assert_close(gm(x), m(x))
    gm = fxnas.trace(m, x, concrete_args={"double": True})
    torch.testing.assert_close(gm(x), m(x, True))
    with pytest.raises(fxnas.TraceError, match="in module '<root>'.*concrete_args.*tracer='meta'"):
        fxnas.trace(DataBranch(), x)


def test_bad_inputs() -> None:
    with pytest.raises(fxnas.TraceError, match="needs an nn.Module"):
        fxnas.trace(lambda x: x, torch.randn(1))
    with pytest.raises(fxnas.TraceError, match="must be a tensor or a tuple"):
        fxnas.trace(nn.ReLU(), "x")
    with pytest.raises(fxnas.TraceError) as ei:
        fxnas.trace(load_model(TINY), torch.randn(1, 1, 16, 16))
    msg = str(ei.value)
    assert "inputs of shape [(1, 1, 16, 16)]" in msg and "module 'stem.0'" in msg and "3 channels" in msg
    assert "\n" not in msg


def test_shape_errors_do_not_print(capfd) -> None:
    with pytest.raises(fxnas.TraceError):
        fxnas.trace(load_model(TINY), torch.randn(1, 1, 16, 16))
    assert "Traceback" not in capfd.readouterr().err


def test_tuple_inputs() -> None:
    class Two(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.cat([a, b], 1) * 2

    a, b = torch.randn(1, 2), torch.randn(1, 3)
    gm = fxnas.trace(Two(), (a, b))
    torch.testing.assert_close(gm(a, b), torch.cat([a, b], 1) * 2)
    out = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    assert node_shape(out) == (1, 5)


class RootBranch(nn.Module):
    """The root itself branches on data: marking it a leaf would leave nothing to trace."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.lin(x)
        return x


def test_control_flow_in_the_root_is_not_told_to_make_the_root_a_leaf() -> None:
    with pytest.raises(fxnas.TraceError) as ei:
        fxnas.trace(RootBranch(), torch.randn(2, 4))
    msg = str(ei.value)
    assert "in module '<root>' (RootBranch)" in msg and "if x.sum() > 0" in msg
    assert "leaf_modules=[RootBranch]" not in msg
    assert "concrete_args" in msg and "move the data-dependent code into a submodule" in msg
    assert "\n" not in msg
