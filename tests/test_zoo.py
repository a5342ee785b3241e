"""The torchvision zoo: trace ≡ eager, all-ORIG subnet ≡ original, sampled subnet ≡ supernet, ONNX ≡ torch.

A CI-sized subset runs by default; every other classification model is marked slow (``pytest -m slow``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import assert_close, randomize_bn

import fxnas
from fxnas.slot import SlotSpec
from fxnas.supernet import mixed_ops

DEFAULT = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_0", "shufflenet_v2_x0_5",
           "efficientnet_b0", "regnet_x_400mf", "densenet121"]
ALL = torchvision.models.list_models(module=torchvision.models)
# inputs smaller than 224 where the model allows (ViT/Swin/MaxViT fix the size; AlexNet/VGG need a 6x6/7x7
# feature map for ONNX's adaptive pooling; Inception needs >= 75 px)
SIZES = {"vit": 224, "swin": 224, "maxvit": 224, "alexnet": 224, "vgg": 224, "inception_v3": 96}
# every torchvision classifier traces; these are listed because this machine cannot hold their copies
TOO_BIG = {"regnet_y_128gf": "644M params: the supernet and subnet copies need > 20 GB of RAM",
           "vit_h_14": "632M params: the supernet and subnet copies need > 20 GB of RAM"}
UNTRACEABLE: dict[str, str] = {}  # none at torchvision 0.29; add "name": "TraceError: ..." to xfail one


def _params() -> list:
    out = []
    for name in ALL:
        marks = [] if name in DEFAULT else [pytest.mark.slow]
        if name in UNTRACEABLE:
            marks.append(pytest.mark.xfail(reason=UNTRACEABLE[name], strict=True))
        if name in TOO_BIG:
            marks.append(pytest.mark.skip(reason=TOO_BIG[name]))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def candidates(spec: SlotSpec) -> list[str]:
    """ORIG plus one new op that fits: a depthwise-separable conv on same-padded conv slots, else identity/zero."""
    i, o = spec.in_shape or (), spec.out_shape or ()
    if spec.kernel_size is not None and len(i) == 4 and len(o) == 4 \
            and all(b == (a - 1) // spec.stride + 1 for a, b in zip(i[2:], o[2:])):
        return ["ORIG", "DW3"]  # DW3 pads "same": it fits exactly where the original conv did
    if len(i) == 2 or i == o:
        return ["ORIG", "IDT"]
    return ["ORIG", "NIL"]


class Case:
    """One zoo model, its input and output, and the supernet built from it (shared by the checks)."""

    def __init__(self, name: str) -> None:
        size = next((v for k, v in SIZES.items() if name.startswith(k)), 64)
        kw: dict = {"num_classes": 10}
        if name in ("googlenet", "inception_v3"):
            kw.update(aux_logits=False, init_weights=False)
        torch.manual_seed(0)
        self.name = name
        self.model = randomize_bn(torchvision.models.get_model(name, weights=None, **kw)).eval()
        with torch.no_grad():  # ViT zero-initialises its head: the outputs would all be 0
            for m in self.model.modules():
                if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and not m.weight.any():
                    m.weight.normal_(0, 0.05)
        self.x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            self.y = self.model(self.x)
        t0 = time.perf_counter()
        self.net = fxnas.searchify(self.model, "conv,dwconv,linear", candidates, example_inputs=self.x).eval()
        self.searchify_s = time.perf_counter() - t0
        for op in mixed_ops(self.net).values():  # new candidates' BN too, so sampled outputs are not ~0
            for cname, cand in op.candidates.items():
                if cname != "ORIG":
                    randomize_bn(cand, seed=1)


@pytest.fixture(scope="module", params=_params())
def case(request) -> Case:
    return Case(request.param)


def test_trace_equals_eager(case: Case) -> None:
    gm = fxnas.trace(case.model, case.x)
    with torch.no_grad():
        assert_close(gm(case.x), case.y)


def test_all_orig_equals_original(case: Case) -> None:
    assert len(case.net.space) > 0
    sub = fxnas.materialize(case.net, {k: "ORIG" for k in case.net.space})
    with torch.no_grad():
        assert float(case.y.abs().max()) > 1e-3
        assert_close(sub(case.x), case.y, rtol=1e-3, atol_scale=1e-4)


def test_sampled_equals_supernet_and_onnx(case: Case, tmp_path: Path) -> None:
    arch = case.net.space.sample(0)
    assert len(set(arch.values())) > 1  # a real mix of ORIG and new ops
    case.net.space.apply(arch)
    sub = fxnas.materialize(case.net, arch).eval()
    assert not [n for n, m in sub.named_modules() if type(m).__module__.startswith("fxnas")]
    with torch.no_grad():
        assert_close(sub(case.x), case.net(case.x), rtol=1e-4, atol_scale=1e-5)
    fxnas.export_onnx(sub, case.x, tmp_path / f"{case.name}.onnx")  # raises unless ONNX ≈ torch
