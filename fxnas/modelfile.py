"""Model sources: a user ``model.py`` (function or nn.Module class), ``torchvision:<builder>``, local weights."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from .errors import ModelError, missing_file
from .yamlio import load_yaml

TORCHVISION_PREFIX = "torchvision:"


@dataclass
class ModelSource:
    """Where a model comes from: a file and entry (function or class), or a torchvision builder, plus kwargs."""

    kind: str  # "file" or "torchvision"
    target: str  # the file path, or the torchvision builder name
    entry: str | None = None  # function / class name in the file (None: the only candidate)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> str:
        """The source as a command-line string (``model.py:build`` or ``torchvision:resnet18``)."""
        if self.kind == "torchvision":
            return TORCHVISION_PREFIX + self.target
        return f"{self.target}:{self.entry}" if self.entry else self.target

    def build(self) -> nn.Module:
        """Construct the model (weights as the builder initialises them)."""
        if self.kind == "torchvision":
            return build_torchvision(self.target, self.kwargs)
        module = import_model_file(self.target)
        name, obj = find_entry(module, self.entry)
        self.entry = name  # record the entry found, so a space file keeps pointing at it
        return _call_entry(f"{self.target}:{name}", obj, self.kwargs)

    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """Plain data for a space file; a file path is stored relative to ``relative_to`` when given."""
        target = self.target
        if self.kind == "file":
            target = portable_path(target, relative_to)
        return {"kind": self.kind, "target": target, "entry": self.entry, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], relative_to: str | os.PathLike | None = None) -> ModelSource:
        """Inverse of to_dict; relative file paths resolve against ``relative_to``."""
        kind, target = d.get("kind"), d.get("target")
        if kind not in ("file", "torchvision") or not isinstance(target, str):
            raise ModelError(f"model source needs kind 'file' or 'torchvision' and a target, got {dict(d)}")
        if kind == "file" and relative_to is not None and not os.path.isabs(target):
            target = os.path.normpath(os.path.join(relative_to, target))
        return cls(kind, target, d.get("entry"), dict(d.get("kwargs") or {}))


def portable_path(path: str | os.PathLike, base: str | os.PathLike | None) -> str:
    """``path`` relative to ``base`` when it lies inside it (so the two can move together), else absolute."""
    full = os.path.abspath(path)
    if base is None:
        return full
    rel = os.path.relpath(full, os.path.abspath(base))
    return full if rel.startswith("..") else rel


def parse_source(spec: str, kwargs: Mapping[str, Any] | None = None) -> ModelSource:
    """Parse ``model.py``, ``model.py:build`` or ``torchvision:resnet18`` into a ModelSource."""
    kwargs = dict(kwargs or {})
    if spec.startswith(TORCHVISION_PREFIX):
        return ModelSource("torchvision", spec[len(TORCHVISION_PREFIX):], None, kwargs)
    path, entry = spec, None
    # "C:\\x.py" has a drive colon; only split on a colon after the .py suffix
    head, sep, tail = spec.rpartition(":")
    if sep and head.endswith(".py") and tail:
        path, entry = head, tail
    if not path.endswith(".py"):
        raise ModelError(f"model {spec!r} is neither a .py file (model.py or model.py:build) nor "
                         f"torchvision:<builder> (e.g. torchvision:resnet18)")
    if not os.path.isfile(path):
        raise ModelError(f"model file {path!r} does not exist (cwd {os.getcwd()}); give a path to a .py file "
                         f"or torchvision:<builder>")
    return ModelSource("file", path, entry, kwargs)


def import_model_file(path: str | os.PathLike) -> ModuleType:
    """Import a user's model file as a module (registered in sys.modules so its classes pickle and deepcopy).

    A file is imported once per process (by resolved path): the components it registers are registered
    once, and its classes stay the same objects.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} does not exist")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    mod_name = f"fxnas_user_{path.stem}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[mod_name]
        raise ModelError(f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}") from exc
    return module


def entry_candidates(module: ModuleType) -> tuple[list[str], list[str]]:
    """(public functions, nn.Module classes) defined in the file itself, in source order."""
    funcs, classes = [], []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue  # imported names are not the user's entry points
        if inspect.isclass(obj) and issubclass(obj, nn.Module):
            classes.append(name)
        elif inspect.isfunction(obj):
            funcs.append(name)
    return funcs, classes


def find_entry(module: ModuleType, entry: str | None) -> tuple[str, Any]:
    """The named entry, or the only public function (else the only nn.Module class) of the file."""
    funcs, classes = entry_candidates(module)
    path = getattr(module, "__file__", module.__name__)
    if entry is not None:
        obj = getattr(module, entry, None)
        if obj is None or not callable(obj):
            raise ModelError(f"{path} has no function or class {entry!r}; candidates: {', '.join(funcs + classes)}")
        return entry, obj
    # a file with one builder function is the common case; classes are only considered without functions
    pick = funcs if funcs else classes
    if len(pick) == 1:
        return pick[0], getattr(module, pick[0])
    if not pick:
        raise ModelError(f"{path} defines no function or nn.Module class to build the model from")
    raise ModelError(f"{path} has several candidates ({', '.join(pick)}); choose one with {path}:{pick[0]}")


def _call_entry(where: str, obj: Any, kwargs: Mapping[str, Any]) -> nn.Module:
    try:
        model = obj(**kwargs)
    except Exception as exc:  # the user's code failed: say where, keep the traceback chained for debugging
        raise ModelError(f"calling {where}(**{dict(kwargs)}) failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ModelError(f"{where} returned {type(model).__name__}, not an nn.Module")
    return model


def build_torchvision(name: str, kwargs: Mapping[str, Any]) -> nn.Module:
    import torchvision

    valid = torchvision.models.list_models(module=torchvision.models)
    if name not in valid:
        import difflib

        close = difflib.get_close_matches(name, valid, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown torchvision model {name!r}{hint} Valid: {', '.join(valid)}")
    if kwargs.get("weights") not in (None, "None"):
        raise ModelError("torchvision weights= would download; save a state dict locally and pass it as weights "
                         "(--weights w.pth)")
    kw = {k: v for k, v in kwargs.items() if k != "weights"}
    return _call_entry(f"torchvision.models.{name}", torchvision.models.get_model, {"name": name, **kw})


def _unwrap_state_dict(obj: Any, path: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if not isinstance(obj, Mapping):
        raise ModelError(f"{path} holds a {type(obj).__name__}, not a state dict")
    for key in ("state_dict", "model", "model_state_dict", "net"):  # common checkpoint wrappers
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise ModelError(f"{path} holds no tensors; keys: {list(obj)[:8]}")
    for prefix in ("module.", "_orig_mod."):  # DataParallel / torch.compile wrappers
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a local file, unwrapping ``state_dict``/``model`` keys and ``module.`` prefixes."""
    path = str(path)
    if not os.path.isfile(path):
        raise missing_file("weights file", path, ModelError)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a text file, a truncated download, a pickle holding code...
        raise ModelError(f"{path!r} is not a torch weights file, or it holds Python objects that could run code "
                         f"when loaded (torch.load(weights_only=True) failed: {type(exc).__name__}); give a state "
                         f"dict saved with torch.save(model.state_dict(), path)") from None
    return _unwrap_state_dict(obj, path)


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a local state dict into ``model`` in place; mismatched keys or shapes raise with a few examples."""
    sd = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} with other shapes (file vs model: {'; '.join(wrong[:3])})")
        raise ModelError(f"weights {str(path)!r} do not fit {type(model).__name__}: {'; '.join(parts)}")
    model.load_state_dict(sd, strict=True)
    return model


def load_model(spec: str | ModelSource, kwargs: Mapping[str, Any] | None = None,
               weights: str | os.PathLike | None = None) -> nn.Module:
    """Build the model ``spec`` names (``model.py[:entry]`` or ``torchvision:name``), then load ``weights``."""
    src = spec if isinstance(spec, ModelSource) else parse_source(spec, kwargs)
    model = src.build()
    if weights is not None:
        load_weights(model, weights)
    return model


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,3,32,32"`` → (1, 3, 32, 32); anything else raises naming the expected form."""
    parts = [p.strip() for p in str(text).replace("x", ",").split(",")]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise ModelError(f"input shape {text!r} is not valid; give comma-separated positive integers such as "
                         f"1,3,32,32 (batch, channels, height, width)")
    return shape


def parse_kwargs(items: list[str] | tuple[str, ...], what: str = "model argument") -> dict[str, Any]:
    """``["num_classes=10", "width=0.5"]`` → kwargs, values parsed as YAML (``width=[0.5,1.0]`` gives a list)."""

    out: dict[str, Any] = {}
    for it in items:
        key, sep, val = it.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ModelError(f"{what} {it!r} is not KEY=VALUE (e.g. num_classes=10)")
        out[key.strip()] = load_yaml(val) if val.strip() else None
    return out
