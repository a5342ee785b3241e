"""`fxnas export`: an experiment folder and a space file + arch to a checked file; --help ends with an example."""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner

import fxnas
from fxnas.arch import write_arch
from fxnas.cli.main import main
from fxnas.export import subnet_from_run
from fxnas.spacefile import load_supernet

TINY = str(Path(fxnas.__file__).parent / "examples" / "tiny_net.py")


def test_experiment_folder_and_space_file(finished_runs, tmp_path: Path) -> None:
    out = tmp_path / "best.ts"
    r = CliRunner().invoke(main, ["export", str(finished_runs["pareto"]), "-f", "torchscript", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "checked against the subnet" in r.output and out.is_file()
    ref = subnet_from_run(finished_runs["pareto"]).module
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(torch.jit.load(str(out))(x), ref(x))

    space = tmp_path / "space.yaml"
    assert CliRunner().invoke(main, ["searchify", TINY, "-c", "NC3,DW3,IDT", "-s", "1,3,16,16", "-o",
                                     str(space)]).exit_code == 0
    arch = write_arch(load_supernet(space).space.sample(1), tmp_path / "arch.yaml")
    r = CliRunner().invoke(main, ["export", str(space), "--arch", str(arch), "-f", "onnx", "-o",
                                  str(tmp_path / "s.onnx")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "s.onnx").is_file()


def test_help_and_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["export", "--help"])
    assert r.output.rstrip().splitlines()[-1].strip().startswith("fxnas export ")
    assert "Registered: onnx, pt2, state_dict, torchscript" in " ".join(r.output.split())
    r = CliRunner().invoke(main, ["export", str(tmp_path), "-f", "tflite"])
    assert r.exit_code == 1 and "tflite" in r.output and "pt2" in r.output, r.output
    r = CliRunner().invoke(main, ["export", TINY])
    assert r.exit_code == 1 and "neither an experiment folder nor a space file" in r.output
