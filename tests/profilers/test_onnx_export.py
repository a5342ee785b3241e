"""export_onnx: simplified ONNX that matches torch (checked with onnxruntime); clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from conftest import randomize_bn
from torch import nn

import fxnas
from fxnas.modelfile import load_model
from fxnas.profilers import onnx_export
from fxnas.profilers.onnx_export import run_onnx

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


def test_export_matches_torch_and_simplifies(tmp_path: Path) -> None:
    m = randomize_bn(load_model(TINY)).eval()
    x = torch.randn(2, 3, 32, 32)
    raw = fxnas.export_onnx(m, x, tmp_path / "raw.onnx", simplify=False)
    simp = fxnas.export_onnx(m, x, tmp_path / "sub" / "simp.onnx")
    assert simp.is_file()
    n_raw = len(onnx.load(str(raw)).graph.node)
    n_simp = len(onnx.load(str(simp)).graph.node)
    assert n_simp <= n_raw
    with torch.no_grad():
        want = m(x).numpy()
    got = run_onnx(simp, x)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    assert m.training is False


def test_materialised_subnet_exports(tmp_path: Path) -> None:
    m = randomize_bn(load_model(TINY)).eval()
    x = torch.randn(1, 3, 32, 32)
    net = fxnas.searchify(m, "conv3x3,dwconv", ["ORIG", "MB3E3", "IDT", "NIL"], example_inputs=x).eval()
    sub = fxnas.materialize(net, net.space.sample(2))
    fxnas.export_onnx(sub, x, tmp_path / "sub.onnx")
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(tmp_path / "sub.onnx", x)[0], sub(x).numpy(), rtol=1e-4, atol=1e-5)


def test_mismatch_is_reported(tmp_path: Path, monkeypatch) -> None:
    m = nn.Linear(4, 2)
    monkeypatch.setattr(onnx_export, "run_onnx", lambda p, a: [np.zeros((1, 2), np.float32) + 9])
    with pytest.raises(fxnas.FxnasError, match="ONNX output 0 differs from torch"):
        fxnas.export_onnx(m, torch.randn(1, 4), tmp_path / "m.onnx", simplify=False)


def test_export_failure_is_one_line_naming_the_op(tmp_path: Path) -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(6))  # 5x5 → 6x6: no TorchScript ONNX symbolic
    with pytest.raises(fxnas.FxnasError) as ei:
        fxnas.export_onnx(m, torch.randn(1, 3, 7, 7), tmp_path / "m.onnx", exporter="torchscript")
    msg = str(ei.value)
    assert "ONNX export of Sequential failed" in msg and "adaptive_avg_pool2d" in msg and "\n" not in msg


def test_auto_falls_back_to_dynamo_and_says_so(tmp_path: Path) -> None:
    m = randomize_bn(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(6))).eval()
    x = torch.randn(1, 3, 7, 7)
    res = onnx_export.export(m, x, tmp_path / "m.onnx")
    assert res.exporter == "dynamo" and res.attention == "native"
    assert len(res.fallbacks) == 1 and res.fallbacks[0].startswith("torchscript/native:")
    assert "adaptive_avg_pool2d" in res.fallbacks[0]
    assert onnx_export.onnx_exporter(res.path) == {"exporter": "dynamo", "attention": "native", "opset": "18",
                                                   "simplified": "true"}
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(res.path, x)[0], m(x).numpy(), rtol=1e-4, atol=1e-5)


class DictHead(nn.Module):
    """A segmentation-style model: a dict of outputs, one of them nested in a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 4, 3, padding=1)
        self.aux = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> dict:
        f = self.body(x)
        return {"out": f.relu(), "aux": (self.aux(f), f.mean((2, 3)))}


def test_dict_and_nested_outputs_are_checked_leaf_by_leaf(tmp_path: Path, monkeypatch) -> None:
    m, x = DictHead().eval(), torch.randn(2, 3, 8, 8)
    res = onnx_export.export(m, x, tmp_path / "d.onnx")
    assert res.reference == "float64" and res.max_error is not None and res.max_error < 1e-5
    outs = run_onnx(res.path, x)
    assert [o.shape for o in outs] == [(2, 4, 8, 8), (2, 2, 8, 8), (2, 4)]
    real = onnx_export.run_onnx
    monkeypatch.setattr(onnx_export, "run_onnx", lambda p, a: real(p, a)[:2] + [real(p, a)[2] + 1])
    with pytest.raises(fxnas.FxnasError, match="ONNX output 2 differs"):
        onnx_export.export(m, x, tmp_path / "d2.onnx")


def test_tolerance_follows_float32_noise_not_a_fixed_fraction() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(4, 100))  # the float64 run
    torch32 = torch.from_numpy((ref + rng.normal(scale=1e-4, size=ref.shape)).astype(np.float32))  # deep-net noise
    onnx_ok = (ref + rng.normal(scale=1e-4, size=ref.shape)).astype(np.float32)  # as close to float64 as torch
    err, tol = onnx_export._check([onnx_ok], [torch32], [ref], rtol=1e-6, atol=1e-6, noise_factor=10.0)
    assert err > 1e-6 * np.abs(ref).max()  # a fixed atol = 1e-6·max|out| would have rejected this file
    assert err <= tol
    wrong = onnx_ok.copy()
    wrong[0, 0] += 0.05  # a real error: far above the noise
    with pytest.raises(fxnas.FxnasError, match="against the float64 reference"):
        onnx_export._check([wrong], [torch32], [ref], rtol=1e-6, atol=1e-6, noise_factor=10.0)


def test_dynamic_batch_runs_at_other_batch_sizes(tmp_path: Path) -> None:
    m = randomize_bn(load_model(TINY)).eval()
    for exporter in ("torchscript", "dynamo"):
        res = onnx_export.export(m, torch.randn(2, 3, 32, 32), tmp_path / f"{exporter}.onnx", dynamic_batch=True,
                                 exporter=exporter, opset=18)
        assert res.exporter == exporter and res.dynamic_batch
        x5 = torch.randn(5, 3, 32, 32)
        with torch.no_grad():
            np.testing.assert_allclose(run_onnx(res.path, x5)[0], m(x5).numpy(), rtol=1e-3, atol=1e-4)


def test_opset_is_the_one_asked_for(tmp_path: Path) -> None:
    p = fxnas.export_onnx(nn.Linear(4, 2), torch.randn(1, 4), tmp_path / "m.onnx", opset=17)
    assert [o.version for o in onnx.load(str(p)).opset_import if o.domain in ("", "ai.onnx")] == [17]
    with pytest.raises(fxnas.FxnasError, match="unknown ONNX exporter 'jit'; use one of auto, torchscript"):
        fxnas.export_onnx(nn.Linear(4, 2), torch.randn(1, 4), tmp_path / "m.onnx", exporter="jit")


def test_math_sdpa_equals_torch() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    bool_mask, add_mask = torch.rand(5, 7) > 0.3, torch.randn(5, 7)
    bool_mask[:, 0] = True  # no fully masked row (softmax of all -inf is nan in both)
    for kw in ({}, {"attn_mask": bool_mask}, {"attn_mask": add_mask}, {"scale": 0.3}):
        torch.testing.assert_close(onnx_export.math_sdpa(q, k, v, **kw), F.scaled_dot_product_attention(q, k, v, **kw))
    qs = torch.randn(2, 3, 7, 8)
    torch.testing.assert_close(onnx_export.math_sdpa(qs, k, v, is_causal=torch.tensor(True)),
                               F.scaled_dot_product_attention(qs, k, v, is_causal=True))


class Attn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False):
        q, k, v = self.qkv(x).reshape(x.shape[0], x.shape[1], 3, 2, 4).permute(2, 0, 3, 1, 4).unbind(0)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


def test_unfed_flags_fold_and_math_attention_is_the_last_resort(tmp_path: Path, monkeypatch) -> None:
    gm = torch.fx.symbolic_trace(Attn()).eval()
    x = torch.randn(1, 5, 8)
    folded = onnx_export.fold_unfed_inputs(gm, 1)
    assert [n.name for n in folded.graph.nodes if n.op == "placeholder"] == ["x"]
    torch.testing.assert_close(folded(x), gm(x))
    assert onnx_export.export(gm, x, tmp_path / "a.onnx").exporter == "torchscript"  # the is_causal regression

    def refuse_fused(m, *a):  # an exporter without a scaled_dot_product_attention lowering
        if any(n.target is F.scaled_dot_product_attention for s in m.modules() if isinstance(s, torch.fx.GraphModule)
               for n in s.graph.nodes):
            raise RuntimeError("Exporting the operator 'aten::scaled_dot_product_attention' is not supported")
        return real(m, *a)

    real = onnx_export._RUNNERS["torchscript"]
    monkeypatch.setitem(onnx_export._RUNNERS, "torchscript", refuse_fused)
    monkeypatch.setitem(onnx_export._RUNNERS, "dynamo", refuse_fused)
    res = onnx_export.export(gm, x, tmp_path / "b.onnx")
    assert (res.exporter, res.attention) == ("torchscript", "math") and len(res.fallbacks) == 2
    assert "aten::scaled_dot_product_attention" in res.fallbacks[0]
    with pytest.raises(fxnas.FxnasError, match="has no default"):
        onnx_export.fold_unfed_inputs(torch.fx.symbolic_trace(nn.Bilinear(2, 2, 2)), 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"])
def test_torchvision_segmentation_dict_outputs(name: str, tmp_path: Path) -> None:
    """Regression: torchvision's segmentation models return {"out": ..., "aux": ...}; the check walks them."""
    import torchvision

    torch.manual_seed(0)
    kw = {"aux_loss": True} if not name.startswith("lraspp") else {}
    m = randomize_bn(torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=3,
                                                  **kw)).eval()
    x = torch.randn(1, 3, 64, 64)
    res = onnx_export.export(m, x, tmp_path / f"{name}.onnx")
    with torch.no_grad():
        want = m(x)
    assert len(run_onnx(res.path, x)) == len(want) and res.max_error <= res.tolerance


@pytest.mark.parametrize("failure", ["rejected", "raises"])
def test_a_simplified_file_onnxruntime_rejects_is_not_kept(failure: str, tmp_path: Path, monkeypatch) -> None:
    """onnxsim can fold shapes into a file onnxruntime will not load (timm's cpubone_nano), or raise on its own
    rewrite (timm's hieradet_small): the file is written as exported."""
    import onnxsim

    def broken(model):
        bad = onnx.ModelProto()
        bad.CopyFrom(model)
        shape = onnx.helper.make_tensor("bad_shape", onnx.TensorProto.INT64, [2], [7, 7])
        bad.graph.initializer.append(shape)
        out = bad.graph.output[0].name
        bad.graph.node[-1].output[0] = "pre_reshape"
        bad.graph.node.append(onnx.helper.make_node("Reshape", ["pre_reshape", "bad_shape"], [out]))
        if failure == "raises":
            raise RuntimeError("Nodes in a graph must be topologically sorted")
        return bad, True

    monkeypatch.setattr(onnxsim, "simplify", broken)
    model, x = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval(), torch.randn(2, 4)
    res = onnx_export.export(model, x, tmp_path / "m.onnx")
    why = "onnxsim: onnxruntime rejects" if failure == "rejected" else "onnxsim: RuntimeError: Nodes in a graph"
    assert not res.simplified and any(f.startswith(why) for f in res.fallbacks), res.fallbacks
    assert onnx_export.onnx_exporter(res.path)["simplified"] == "false"
    np.testing.assert_allclose(run_onnx(res.path, x)[0], model(x).detach().numpy(), rtol=1e-5, atol=1e-6)


class RMSNormed(nn.Module):
    """RMS norms as a module and as a function (timm's Gemma4 ViT): opset 18 has no RMSNormalization."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.lin = nn.RMSNorm(8, eps=1e-6), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(self.lin(self.norm(x)), (8,), eps=1e-5)


def test_rms_norm_exports_in_its_math_form(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = RMSNormed().eval()
    with torch.no_grad():
        m.norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 5, 8)
    gm = fxnas.trace(m, x)
    math_gm, changed = onnx_export.math_attention(gm)
    assert changed == 2
    torch.testing.assert_close(math_gm(x), m(x), rtol=1e-5, atol=1e-6)
    res = onnx_export.export(gm, x, tmp_path / "m.onnx")
    assert res.attention == "math" or res.exporter == "dynamo"  # whichever lowers rms_norm; checked vs torch
    np.testing.assert_allclose(run_onnx(res.path, x)[0], m(x).detach().numpy(), rtol=1e-4, atol=1e-5)
