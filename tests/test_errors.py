"""fxnas.errors and the bad-input catalogue (docs/errors.md): every row names a test that exists; the
cases the catalogue added are checked here (missing files say where they looked, arch files name the file)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

import fxnas
from fxnas.arch import read_arch
from fxnas.cli.main import main
from fxnas.config import build_experiment, load_config
from fxnas.errors import ConfigError, ModelError, missing_file
from fxnas.modelfile import load_model
from fxnas.space import Numerical

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "docs" / "errors.md"
ROW = re.compile(r"^\|(?P<case>[^|]+)\|(?P<message>.+)\|\s*`(?P<test>tests/[^`:]+::[A-Za-z_0-9]+)`\s*\|$")
TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


def _rows() -> list[dict[str, str]]:
    lines = [ln for ln in CATALOGUE.read_text().splitlines() if ln.startswith("|") and not ln.startswith("|--")]
    body = [ln for ln in lines if not ln.startswith("| Case |")]
    rows = []
    for ln in body:
        m = ROW.match(ln)
        assert m, f"docs/errors.md row does not end with a `tests/...py::test_name` cell: {ln[:120]}"
        rows.append(m.groupdict())
    return rows


def test_every_catalogue_row_names_an_existing_test() -> None:
    rows = _rows()
    assert len(rows) >= 40
    missing = []
    for row in rows:
        path, name = row["test"].split("::")
        file = ROOT / path
        names = {n.name for n in ast.walk(ast.parse(file.read_text()))
                 if isinstance(n, ast.FunctionDef)} if file.is_file() else set()
        if name not in names:
            missing.append(row["test"])
        assert row["message"].strip() and row["case"].strip(), row
    assert not missing, f"docs/errors.md names tests that do not exist: {missing}"


def test_missing_file_names_the_absolute_path_of_a_relative_one(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    err = missing_file("weights file", "w.pth", ModelError)
    assert isinstance(err, ModelError)
    assert str(err) == f"weights file 'w.pth' does not exist (looked at {tmp_path / 'w.pth'})"
    assert str(missing_file("arch file", tmp_path / "a.yaml")) == f"arch file '{tmp_path / 'a.yaml'}' does not exist"


def _digits_like(**data) -> dict:
    return {"name": "e", "progress": False, "model": {"type": "tiny_net", "width": 4},
            "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3"]},
            "data": {"type": "tensors", "batch_size": 10, **data},
            "optim": {"type": "Random"}, "estim": [{"type": "SubNet", "budget": 1}]}


def test_a_missing_relative_file_says_where_it_looked(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a config given as a dict: relative paths are the working directory's
    with pytest.raises(ConfigError) as ei:
        build_experiment(load_config(_digits_like(path="missing.pt")))
    assert str(ei.value) == f"tensors file 'missing.pt' does not exist (looked at {tmp_path / 'missing.pt'})"


def test_a_tensors_file_that_is_not_torch_is_one_line(tmp_path) -> None:
    (tmp_path / "data.pt").write_text("x,y\n1,2\n")
    with pytest.raises(ConfigError) as ei:
        build_experiment(load_config(_digits_like(path=str(tmp_path / "data.pt"))))
    msg = str(ei.value)
    assert "is not a torch file of tensors" in msg and "torch.save({'X': X, 'y': y}, path)" in msg
    assert "\n" not in msg


def test_arch_file_errors_name_the_file(tmp_path) -> None:
    net = fxnas.searchify(load_model(TINY), "conv3x3", ["ORIG", "NC3"], torch.randn(1, 3, 16, 16))
    first = next(iter(net.space))
    cases = {
        "choice.yaml": (yaml.safe_dump({first: "NC9"}),
                        f"'NC9' is not a valid value for '{first}'; valid: ['ORIG', 'NC3']"),
        "param.yaml": (yaml.safe_dump({"nope": "NC3"}), "no param 'nope' in this space; params: ["),
        "syntax.yaml": (f"{first}: [NC3\n", "is not valid YAML: line 2, column 1"),
    }
    for name, (text, want) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError) as ei:
            read_arch(tmp_path / name, net.space)
        msg = str(ei.value)
        assert msg.startswith(f"arch file '{tmp_path / name}'") and want in msg and "\n" not in msg, msg
    net.space.add(Numerical("p", 0.0, 1.0))
    (tmp_path / "range.yaml").write_text("p: 9\n")
    with pytest.raises(ConfigError, match=r"range\.yaml': 9 is outside \[0\.0, 1\.0\] for 'p'$"):
        read_arch(tmp_path / "range.yaml", net.space)


def test_searchify_bad_weights_and_outputs_are_one_line_errors(tmp_path: Path) -> None:
    junk = tmp_path / "w.pth"
    junk.write_text("not a checkpoint")  # torch.load of text once raised KeyError: 101
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args, needle in (([TINY, "-w", str(junk)], "is not a torch weights file"),
                         ([TINY, "-o", str(afile / "s.yaml")], f"'{afile}' is a file")):
        r = CliRunner().invoke(main, ["searchify", *args])
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        errors = [ln for ln in r.output.splitlines() if ln.startswith("Error")]
        assert len(errors) == 1 and needle in errors[0], r.output
