"""Python source for a network that needs only torch: a flat torch.fx trace down to ``torch.nn`` layers.

``module_source`` traces the module through every non-``torch.nn`` submodule (fxnas candidates, mixed ops
already materialised away, user blocks), so the graph calls only torch functions, ``operator``/builtins and
``torch.nn`` layers. Each layer is written as its constructor call, taken from its ``repr`` and checked by
rebuilding it; parameters and buffers owned by other modules become ``nn.Parameter``/buffers of the root.
The weights travel separately as a state dict whose keys are the generated module's.
"""

from __future__ import annotations

import builtins
import math
import operator
import re
import types
from typing import Any

import torch
from torch import fx, nn

from ..errors import FxnasError

# the modules whose callables generated code may name (their names are imported at the top of the file)
_IMPORTABLE = {"torch": torch, "operator": operator, "math": math}


def _is_torch_layer(m: nn.Module) -> bool:
    """A ``torch.nn`` layer (not a container) that its repr can rebuild."""
    cls = type(m)
    if not cls.__module__.startswith("torch.nn.modules") or isinstance(m, (nn.Sequential, nn.ModuleList,
                                                                          nn.ModuleDict)):
        return False
    return _constructor(m) is not None


def _constructor(m: nn.Module) -> str | None:
    """``nn.<Class>(<extra_repr>)`` when evaluating it builds a layer with the same repr and parameter shapes."""
    if any(True for _ in m.children()):
        return None
    code = f"nn.{type(m).__name__}({m.extra_repr()})"
    try:
        built = eval(code, {"nn": nn, "torch": torch})  # noqa: S307  (our own repr of a torch layer)
    except Exception:
        return None
    same = repr(built) == repr(m) and {k: v.shape for k, v in built.state_dict().items()} == {
        k: v.shape for k, v in m.state_dict().items()}
    return code if same else None


class _FlatTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _is_torch_layer(m)


def _ident(qualname: str) -> str:
    name = re.sub(r"\W", "_", qualname)
    return name if name and not name[0].isdigit() else f"m_{name}"


def flatten(module: nn.Module) -> fx.GraphModule:
    """``module`` traced down to torch.nn layers, each layer and tensor attribute renamed to a flat identifier."""
    try:
        graph = _FlatTracer().trace(module)
    except Exception as exc:
        raise FxnasError(f"cannot trace {type(module).__name__} to plain torch layers for a standalone source: "
                         f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from exc
    root = nn.Module()
    taken: dict[str, str] = {}
    for node in graph.nodes:
        if node.op not in ("call_module", "get_attr"):
            continue
        if node.target not in taken:
            flat = _ident(str(node.target))
            while flat in taken.values():
                flat += "_"
            taken[node.target] = flat
            obj = module.get_submodule(node.target) if node.op == "call_module" else _attr(module, node.target)
            if isinstance(obj, nn.Parameter):
                root.register_parameter(flat, obj)
            elif isinstance(obj, torch.Tensor):
                root.register_buffer(flat, obj)
            else:
                root.add_module(flat, obj)
        node.target = taken[node.target]
    return fx.GraphModule(root, graph, class_name=type(module).__name__)


def _attr(module: nn.Module, target: str) -> Any:
    obj: Any = module
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _import_lines(gm: fx.GraphModule) -> list[str]:
    """The imports the generated forward needs; FxnasError naming a callable outside torch/operator/math."""
    code = gm.graph.python_code("self")
    lines = []
    for name, obj in code.globals.items():
        if not re.search(rf"\b{re.escape(name)}\b", code.src):
            continue  # codegen's default globals (pytree, inf...) the forward does not use
        if name in vars(builtins) and getattr(builtins, name) is obj:
            continue
        if name in _IMPORTABLE and _IMPORTABLE[name] is obj:
            continue
        mod = getattr(obj, "__module__", None) or ""
        if name == "NoneType" and obj is type(None):
            lines.append("NoneType = type(None)")
            continue
        if name in ("inf", "nan") and isinstance(obj, float):
            lines.append(f"{name} = float('{name}')")
            continue
        top = mod.split(".")[0]
        if top in _IMPORTABLE and getattr(__import__(mod, fromlist=["_"]), getattr(obj, "__name__", ""), None) is obj:
            lines.append(f"from {mod} import {obj.__name__} as {name}")
            continue
        if isinstance(obj, types.ModuleType) and obj.__name__.split(".")[0] in _IMPORTABLE:
            lines.append(f"import {obj.__name__} as {name}")
            continue
        if name == "device" and obj is torch.device:
            lines.append("device = torch.device")
            continue
        raise FxnasError(f"the subnet calls {name} ({mod or type(obj).__name__}), which is not part of torch; "
                         f"export it as pt2, torchscript or onnx instead")
    return lines


def module_source(module: nn.Module, class_name: str = "Subnet") -> tuple[str, dict[str, torch.Tensor]]:
    """(source of a torch-only ``nn.Module`` class named ``class_name``, its state dict)."""
    gm = flatten(module)
    init = []
    for name, child in gm.named_children():
        ctor = _constructor(child)
        if ctor is None:  # a layer flatten kept must be rebuildable; anything else is a bug here
            raise FxnasError(f"layer {name} ({type(child).__name__}) has no constructor call to write")
        init.append(f"        self.{name} = {ctor}")
    for name, p in gm.named_parameters(recurse=False):
        init.append(f"        self.{name} = nn.Parameter(torch.empty({list(p.shape)}, dtype={p.dtype}))")
    for name, b in gm.named_buffers(recurse=False):
        init.append(f"        self.register_buffer({name!r}, torch.empty({list(b.shape)}, dtype={b.dtype}))")
    forward = gm.code.strip("\n")
    body = "\n".join("    " + ln if ln.strip() else "" for ln in forward.splitlines())
    head = ["# Generated by fxnas export: a standalone network that needs only torch.", "import math",
            "import operator", "", "import torch", "from torch import nn", *_import_lines(gm), "", "",
            f"class {class_name}(nn.Module):", "    def __init__(self) -> None:", "        super().__init__()"]
    src = "\n".join([*head, *(init or ["        pass"]), "", body, ""])
    return src, {k: v.detach().clone() for k, v in gm.state_dict().items()}
