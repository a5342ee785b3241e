"""The package never unpickles untrusted input: every ``torch.load`` passes ``weights_only=True`` except the
listed loads of whole modules fxnas itself wrote (each documented as such), YAML is parsed with a SafeLoader,
and no other unpickler is called. Read from the package source (ast), so a new load site fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

import fxnas
from fxnas import yamlio

PACKAGE = Path(fxnas.__file__).parent
# (file, function) -> why the file is trusted: whole modules fxnas saved into the user's own output folders
TRUSTED_PICKLES = {
    ("pipeline/model_steps.py", "load_module"): "a module an earlier step of the same pipeline saved",
}
UNPICKLERS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("cloudpickle", "load"),
              ("cloudpickle", "loads"), ("dill", "load"), ("dill", "loads"), ("joblib", "load"),
              ("marshal", "load"), ("marshal", "loads"), ("shelve", "open"), ("pd", "read_pickle"),
              ("pandas", "read_pickle")}
UNSAFE_YAML = {"unsafe_load", "full_load", "load_all", "unsafe_load_all", "full_load_all"}


def _calls(tree: ast.AST):
    """(enclosing function name, call node, dotted callee as (base, attr)) for every attribute call."""
    stack: list[tuple[str, ast.Call]] = []

    def visit(node: ast.AST, func: str):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                    and isinstance(child.func.value, ast.Name):
                stack.append((name, child))
            visit(child, name)

    visit(tree, "<module>")
    for func, call in stack:
        yield func, call, (call.func.value.id, call.func.attr)


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(), str(path))


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_every_torch_load_is_weights_only_or_a_listed_trusted_file() -> None:
    unsafe, seen = [], set()
    for rel, tree in _sources():
        funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for func, call, callee in _calls(tree):
            if callee != ("torch", "load"):
                continue
            flag = _keyword(call, "weights_only")
            if isinstance(flag, ast.Constant) and flag.value is True:
                continue
            site = (rel, func)
            if site in TRUSTED_PICKLES and isinstance(flag, ast.Constant) and flag.value is False:
                doc = ast.get_docstring(funcs[func]) or ""
                assert "unpickl" in doc.lower() or "runs code" in doc.lower(), \
                    f"{rel}:{func} loads a pickle: its docstring must say why the file is trusted"
                seen.add(site)
                continue
            unsafe.append(f"{rel}:{call.lineno} in {func}")
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"
    assert seen == set(TRUSTED_PICKLES), f"trusted loads listed but gone: {set(TRUSTED_PICKLES) - seen}"


def test_no_other_unpickler_is_called() -> None:
    found = [f"{rel}:{call.lineno} {'.'.join(callee)}" for rel, tree in _sources()
             for _, call, callee in _calls(tree) if callee in UNPICKLERS]
    assert not found, found
    # numpy loads only without pickles
    for rel, tree in _sources():
        for _, call, callee in _calls(tree):
            if callee[1] == "load" and callee[0] in ("np", "numpy"):
                flag = _keyword(call, "allow_pickle")
                assert flag is None or (isinstance(flag, ast.Constant) and flag.value is False), rel


def test_yaml_is_read_with_a_safe_loader() -> None:
    assert issubclass(yamlio._Loader, yaml.SafeLoader)
    bad = []
    for rel, tree in _sources():
        for _, call, callee in _calls(tree):
            if callee[0] != "yaml":
                continue
            if callee[1] in UNSAFE_YAML:
                bad.append(f"{rel}:{call.lineno} yaml.{callee[1]}")
            elif callee[1] == "load":
                loader = _keyword(call, "Loader")
                if not (rel == "yamlio.py" and isinstance(loader, ast.Name) and loader.id == "_Loader"):
                    bad.append(f"{rel}:{call.lineno} yaml.load")
    assert not bad, f"YAML read without the safe loader (use fxnas.yamlio.load_yaml or yaml.safe_load): {bad}"
    with pytest.raises(yaml.constructor.ConstructorError):  # a YAML payload that would run code is refused
        yamlio.load_yaml("a: !!python/object/apply:os.getcwd []")
