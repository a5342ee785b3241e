"""The timm zoo: trace ≡ eager, patterns find what a plain count finds, all-ORIG ≡ model, sampled subnet ≡ supernet,
ONNX ≡ torch, on one representative of every timm model family (``timm.list_modules()``), built with
``pretrained=False`` at a small input.

A CI-sized subset runs by default; every other family is marked slow (``pytest -m slow tests/test_zoo_timm.py``).
``FXNAS_ZOO=name,name`` runs just those models, slow or not; ``tests/zoo_coverage.py`` runs every model in a
process of its own under a time limit and writes the per-stage table of ``docs/models.md``.
A model that cannot pass is listed in EXCLUDED with the reason, as a non-strict xfail (none is, today); one that
needs another tracer than fx is listed in TRACER.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
from conftest import assert_close, randomize_bn
from torch import nn

import fxnas
from fxnas.passes.patterns import resolve_pattern
from fxnas.slot import SlotSpec
from fxnas.supernet import mixed_ops

timm = pytest.importorskip("timm")

# the default run: small nets of the common layouts (vit_tiny: the materialised ViT subnet that must export)
DEFAULT = ["resnet10t", "mobilenetv3_small_050", "vit_tiny_patch16_224"]
# regression models of the slow run (resnet50d: a deep net whose float32 noise the ONNX check must tolerate)
REGRESSIONS = ["resnet50d", "lcnet_050", "regnetx_002", "convnext_atto", "ghostnet_050", "mixer_s16_224",
               "densenet121", "inception_v3",
               "tf_efficientnet_b0", "legacy_xception"]
# the smallest-sounding model of each family stands for it (names are all there is before building one)
_SMALL = re.compile(r"atto|femto|pico|nano|tiny|mini|small|xxs|xs|_t\b|_s\b|050|10t|18|_b0\b|_2\b|_s16")
# fixed-size models that build at a smaller input when asked (positional embeddings are sized at build time)
IMG_SIZE_KW = 64
SIZE = 64
# model → reason: xfail (non-strict) until the feature it needs lands
EXCLUDED: dict[str, str] = {}  # measured with tests/zoo_coverage.py: every model passes every stage today


# model → tracer, where plain fx cannot decide the model's shape-dependent Python (as data, like EXCLUDED)
TRACER: dict[str, str] = {
    "gemma4_vit_167m": "meta",  # Gemma4VitEncoder: if x.ndim != 4 or self.global_pool != 'soft'
}


def representative(module: str) -> str:
    """The model standing for a timm family: the shortest small-sounding name, else the shortest name."""
    names = timm.list_models(module=module)
    small = [n for n in names if _SMALL.search(n)]
    return min(small or names, key=lambda n: (len(n), n))


def _all() -> list[str]:
    reps = {representative(m) for m in timm.list_modules()}
    return sorted(reps | set(DEFAULT) | set(REGRESSIONS))


def _params() -> list:
    chosen = [n for n in os.environ.get("FXNAS_ZOO", "").split(",") if n]
    out = []
    for name in chosen or _all():
        marks = [] if name in DEFAULT or chosen else [pytest.mark.slow]
        if name in EXCLUDED:
            marks.append(pytest.mark.xfail(reason=EXCLUDED[name], strict=False))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def build(name: str) -> tuple[nn.Module, torch.Tensor]:
    """The model with random weights and BN statistics, and an input it accepts (64 px where it can)."""
    for kw in ({"img_size": IMG_SIZE_KW}, {}):  # ViT-style models size their position embeddings at build time
        torch.manual_seed(0)
        try:
            model = timm.create_model(name, pretrained=False, num_classes=10, **kw)
        except TypeError:
            continue
        model = randomize_bn(model).eval()
        with torch.no_grad():  # zero-initialised heads / layer scales would make every output 0
            for m in model.modules():
                if isinstance(m, (nn.Linear, nn.Conv2d)) and not m.weight.any():
                    m.weight.normal_(0, 0.05)
            head = model.get_classifier()  # timm heads start tiny (std 1e-3 and less): outputs far from 0
            if isinstance(head, nn.Linear):
                head.weight.normal_(0, 0.2)
        for size in (SIZE, *model.pretrained_cfg.get("input_size", (3, 224, 224))[1:2]):
            x = torch.randn(1, 3, size, size)
            try:
                with torch.no_grad():
                    model(x)
                return model, x
            except Exception:
                continue
    raise RuntimeError(f"{name} runs neither at {SIZE} px nor at its default size")


def candidates(spec: SlotSpec) -> list[str]:
    """ORIG plus one op that fits: DW3 on same-padded convs, LR50 on linears, else identity or zero."""
    i, o = spec.in_shape or (), spec.out_shape or ()
    if isinstance(spec.original, nn.Linear):
        return ["ORIG", "LR50"]
    if spec.kernel_size is not None and len(i) == 4 and len(o) == 4 \
            and all(b == (a - 1) // spec.stride + 1 for a, b in zip(i[2:], o[2:])):
        return ["ORIG", "DW3"]
    if i == o:
        return ["ORIG", "IDT"]
    return ["ORIG", "NIL"]


COUNTS = {  # the plain count each pattern must agree with: modules of that kind the forward calls
    "conv": lambda m: isinstance(m, nn.Conv2d) and m.groups == 1,
    "dwconv": lambda m: isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels,
    "linear": lambda m: isinstance(m, nn.Linear),
}


def called_modules(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    """Modules the eager forward calls (each once), found with forward pre-hooks."""
    seen: dict[int, nn.Module] = {}

    def note(mod: nn.Module, _args: tuple) -> None:  # returns None: the input passes unchanged
        seen.setdefault(id(mod), mod)

    hooks = [m.register_forward_pre_hook(note) for m in model.modules()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return list(seen.values())


class Case:
    """One zoo model, its input and output, and the supernet built from it (shared by the checks)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tracer = TRACER.get(name)
        self.model, self.x = build(name)
        with torch.no_grad():
            self.y = self.model(self.x)
        self.called = called_modules(self.model, self.x)
        self._net: nn.Module | None = None

    @property
    def net(self) -> nn.Module:
        if self._net is None:
            net = fxnas.searchify(self.model, "conv,dwconv,linear", candidates, example_inputs=self.x,
                                  tracer=self.tracer).eval()
            for op in mixed_ops(net).values():  # new candidates' BN too, so sampled outputs are not ~0
                for cname, cand in op.candidates.items():
                    if cname != "ORIG":
                        randomize_bn(cand, seed=1)
            self._net = net
        return self._net


@pytest.fixture(scope="module", params=_params())
def case(request) -> Case:
    return Case(request.param)


def test_trace_equals_eager(case: Case) -> None:
    gm = fxnas.trace(case.model, case.x, tracer=case.tracer)
    with torch.no_grad():
        assert_close(gm(case.x), case.y)


@pytest.mark.parametrize("pattern", list(COUNTS))
def test_pattern_finds_what_a_plain_count_finds(case: Case, pattern: str) -> None:
    """Subclasses with their own forward (timm's Linear, Conv2dSame, StdConv2d...) included: traced as
    searchify traces them, kept whole where the pattern selects them. Modules inside a trace leaf (timm's
    not-trace registry) get no slot, and ``hidden_by_leaves`` must name exactly those."""
    names = {id(m): n for n, m in case.model.named_modules()}
    want = {names[id(m)] for m in case.called if COUNTS[pattern](m)}
    pat = resolve_pattern(pattern)
    gm = fxnas.trace(case.model, case.x, leaf_modules=tuple(pat.leaf_types), leaf_predicate=pat.keeps_whole,
                     tracer=case.tracer,
                     selects=pat.selects)  # a copy of the model: slots are compared by module path
    hidden = {p for inner in fxnas.hidden_by_leaves(gm, pattern).values() for p in inner}
    found = set(fxnas.rewrite(gm, pattern, allow_empty=True))
    assert found == want - hidden, (f"{pattern}: {len(found)} slots, {len(want)} modules, {len(hidden)} hidden "
                                    f"in leaves; missed {sorted(want - hidden - found)[:4]}, "
                                    f"extra {sorted(found - want)[:4]}")


def test_all_orig_equals_original(case: Case) -> None:
    net = case.net
    assert len(net.space) > 0
    sub = fxnas.materialize(net, {k: "ORIG" for k in net.space})
    with torch.no_grad():
        assert float(case.y.abs().max()) > 1e-3
        assert_close(sub(case.x), case.y, rtol=1e-3, atol_scale=1e-4)


def test_sampled_equals_supernet_and_onnx(case: Case, tmp_path: Path) -> None:
    net = case.net
    arch = net.space.sample(0)
    assert len(set(arch.values())) > 1  # a real mix of ORIG and new ops
    net.space.apply(arch)
    sub = fxnas.materialize(net, arch).eval()
    assert not [n for n, m in sub.named_modules() if type(m).__module__.startswith("fxnas")]
    with torch.no_grad():
        assert_close(sub(case.x), net(case.x), rtol=1e-4, atol_scale=1e-5)
    fxnas.export_onnx(sub, case.x, tmp_path / f"{case.name}.onnx")  # raises unless ONNX ≈ torch
