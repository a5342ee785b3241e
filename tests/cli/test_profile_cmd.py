"""`fxnas profile`: the table for a model, a space file's subnet and an experiment folder; ONNX; errors."""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner

import fxnas
from fxnas.arch import write_arch
from fxnas.cli.main import main
from fxnas.modelfile import load_model
from fxnas.spacefile import load_supernet

TINY = str(Path(fxnas.__file__).parent / "examples" / "tiny_net.py")


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_ends_with_an_example() -> None:
    r = run("profile", "--help")
    assert r.exit_code == 0
    assert r.output.rstrip().splitlines()[-1].strip().startswith("fxnas profile ")
    assert "profile" in run("--help").output


def test_model_table_per_layer_latency_and_onnx(tmp_path: Path) -> None:
    x = torch.randn(1, 3, 32, 32)
    want = fxnas.profile(load_model(TINY).eval(), x)
    out = tmp_path / "m.onnx"
    r = run("profile", TINY, "-s", "1,3,32,32", "-r", "torch", "--repeats", "3", "--warmup", "1",
            "--cache", str(tmp_path), "--per-layer", "--onnx", str(out))
    assert r.exit_code == 0, r.output
    assert f"{want['params']:,}" in r.output and f"{want['macs'] / 1e6:.3f} M" in r.output
    assert "latency torch (cpu, 1 thread)" in r.output and "ms median" in r.output
    assert "res1_conv1" in r.output and "ms (table)" in r.output  # a row per node, with per-op latency
    assert out.is_file() and (tmp_path / "latency.sqlite").is_file()


def test_space_file_with_arch_and_experiment_folder(tmp_path: Path, finished_runs) -> None:
    space = tmp_path / "space.yaml"
    r = run("searchify", TINY, "-c", "NC3,DW3,IDT", "-s", "1,3,16,16", "-o", str(space))
    assert r.exit_code == 0, r.output
    net = load_supernet(space)
    arch = net.space.sample(4)
    sub = fxnas.materialize(net, arch).eval()
    want = fxnas.profile(sub, torch.randn(1, 3, 16, 16))
    r = run("profile", str(space), "--arch", str(write_arch(arch, tmp_path / "arch.yaml")), "--no-latency")
    assert r.exit_code == 0, r.output
    assert f"{want['params']:,}" in r.output and "on 1x3x16x16" in r.output and "latency" not in r.output
    # an experiment folder: the subnet rebuilt from config.yaml + arch_best.yaml + subnet_state.pt
    folder = finished_runs["pareto"]
    want = fxnas.profile(torch.load(folder / "subnet.pt", weights_only=False).eval(), torch.randn(1, 3, 16, 16))
    r = run("profile", str(folder), "--no-latency")
    assert r.exit_code == 0, r.output
    assert f"{want['params']:,}" in r.output and "on 1x3x16x16" in r.output


def test_errors_are_one_line(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    run("searchify", TINY, "-c", "NC3,IDT", "-s", "1,3,16,16", "-o", str(space))
    cases = [
        ((str(space), "--no-latency"), "--arch arch.yaml"),
        ((str(tmp_path), "--no-latency"), "no config.yaml"),
        ((TINY, "--arch", "a.yaml"), "--arch goes with a space file"),
        ((TINY, "-s", "1,3,32,32", "-r", "onnxrt"), "unknown runtime 'onnxrt'"),
        ((TINY, "-s", "1,3,32,32", "--provider", "NoSuchExecutionProvider"), "no execution provider"),
        ((str(tmp_path / "missing.py"),), "missing.py"),
    ]
    for args, msg in cases:
        r = CliRunner().invoke(main, ["profile", *args])
        assert r.exit_code == 1, (args, r.output)
        lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:") and msg in lines[0], (args, r.output)
