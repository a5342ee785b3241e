"""The CPU install files (requirements/) agree with pyproject.toml and with what torch itself requires."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")

REQ = Path(__file__).resolve().parents[1] / "requirements"
PYPROJECT = tomllib.loads((REQ.parent / "pyproject.toml").read_text())["project"]
TORCH = {"torch", "torchvision"}


def requirements(name: str) -> dict[str, Requirement]:
    """The requirements of requirements/<name> by package name (``-r`` includes not followed)."""
    out = {}
    for line in (REQ / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            r = Requirement(line)
            out[r.name.lower()] = r
    return out


def by_name(specs: list[str]) -> dict[str, Requirement]:
    return {Requirement(s).name.lower(): Requirement(s) for s in specs}


def test_torch_pins_are_pyprojects():
    want, got = by_name(PYPROJECT["dependencies"]), requirements("torch-cpu.txt")
    for name in TORCH:
        assert str(got[name].specifier) == str(want[name].specifier), name


def test_cpu_txt_holds_every_other_dependency_of_pyproject():
    got = requirements("cpu.txt")
    for name, r in by_name(PYPROJECT["dependencies"]).items():
        if name not in TORCH:
            assert name in got and got[name].specifier == r.specifier, f"{name}: cpu.txt has {got.get(name)}"
    assert not TORCH & set(got), "torch is installed without its dependencies, from torch-cpu.txt"


def test_test_txt_is_cpu_txt_plus_the_test_extra():
    """The test extra is in test.txt, or in test-torch.txt for packages built on torch (installed with
    --no-deps, since a plain install would bring the full CUDA build of torch back)."""
    assert "-r cpu.txt" in (REQ / "test.txt").read_text().splitlines()
    got = {**requirements("test.txt"), **requirements("test-torch.txt")}
    for name, r in by_name(PYPROJECT["optional-dependencies"]["test"]).items():
        assert name in got and got[name].specifier == r.specifier and got[name].extras == r.extras, name
    assert not set(requirements("test.txt")) & set(requirements("test-torch.txt"))


@pytest.mark.parametrize("package", sorted(TORCH))
def test_torchs_own_requirements_are_covered(package):
    """Torch's and torchvision's pure-Python requirements are in cpu.txt; torch's CUDA libraries are in
    torch-cpu.txt at torch's pins (those it pins through cuda-toolkit are checked when that is installed)."""
    try:
        reqs = [Requirement(r) for r in md.requires(package) or []]
    except md.PackageNotFoundError:
        pytest.skip(f"{package} is not installed")
    cpu, libs = requirements("cpu.txt"), requirements("torch-cpu.txt")
    for r in reqs:
        if r.marker is None and r.name.lower() not in TORCH:
            assert r.name.lower() in cpu, f"{package} needs {r}; add it to requirements/cpu.txt"
        elif r.name.startswith("nvidia-") and r.marker is not None and r.marker.evaluate({"extra": ""}):
            assert libs[r.name.lower()].specifier == r.specifier, r
