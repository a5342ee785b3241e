"""`fxnas list`: every registry and every registered name appears; kind and filter narrow it; bad kind errors."""

from __future__ import annotations

from click.testing import CliRunner

from fxnas.cli.main import main
from fxnas.components import registries
from fxnas.config.listing import component_rows


def test_every_registry_and_name_is_listed() -> None:
    rows = component_rows()
    listed = {(r.kind, r.name) for r in rows}
    for kind, reg in registries().items():
        assert reg.names(), kind
        for name in reg.names():
            assert (kind, name) in listed, (kind, name)
    opts = {r.name: r.options for r in rows if r.kind == "optimizer"}
    assert any(o.startswith("lr: ") for o in opts["DARTS"])  # the option signatures, typed


def test_cli_kind_filter_and_errors() -> None:
    r = CliRunner().invoke(main, ["list", "export_format"])
    assert r.exit_code == 0, r.output
    for name in ("pt2", "torchscript", "state_dict", "onnx"):
        assert name in r.output
    assert "4 components" in r.output
    r = CliRunner().invoke(main, ["list", "candidate", "MB3E6"])
    assert r.exit_code == 0 and "MB3E6" in r.output and "NC3" not in r.output
    r = CliRunner().invoke(main, ["list", "nosuchkind"])
    assert r.exit_code == 1 and "unknown component kind 'nosuchkind'" in r.output and "optimizer" in r.output
    assert CliRunner().invoke(main, ["list", "--help"]).output.rstrip().splitlines()[-1].strip().startswith(
        "fxnas list ")
