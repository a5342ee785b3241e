"""Every command: --help ends with an example, and docs/cli.md lists the command with that example."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fxnas.cli.main import COMMANDS, main

CLI_DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()


def test_every_command_ends_its_help_with_an_example_that_docs_cli_shows() -> None:
    assert len(main.commands) == len(COMMANDS)
    for name in main.commands:
        out = CliRunner().invoke(main, [name, "--help"]).output.rstrip().splitlines()
        example = out[-1].strip()
        assert example.startswith(f"fxnas {name} "), (name, example)
        assert any(ln.strip().startswith("Example") for ln in out[-5:]), name
        assert f"`fxnas {name}`" in CLI_DOC, name
        assert any(ex.strip() in CLI_DOC for ex in out[-3:] if ex.strip().startswith("fxnas ")), (name, example)
