"""`fxnas pipeline`: it runs a pipeline file (exit 1 when a step failed), ends --help with an example and
reports bad input in one line."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from fxnas.cli.main import main


def test_pipeline_runs_and_exits_1_when_a_step_fails(tmp_path):
    (tmp_path / "pipe.yaml").write_text(yaml.safe_dump({"steps": {
        "ok": {"type": "Command", "command": ["{python}", "-c", "print('{\"v\": 3}')"]},
        "bad": {"type": "Command", "command": ["{python}", "-c", "raise SystemExit(4)"]},
        "next": {"type": "Command", "command": ["{python}", "-c", "pass"], "after": ["bad"]}}}))
    res = CliRunner().invoke(main, ["pipeline", "-c", str(tmp_path / "pipe.yaml"), "--out-root", str(tmp_path)])
    assert res.exit_code == 1, res.output
    assert "ok: done" in res.stderr and "bad: failed: exit code 4" in res.stderr and "next: not run: bad failed" \
        in res.stderr
    assert "v=3" in res.stdout


def test_help_ends_with_an_example_and_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(main, ["pipeline", "--help"])
    assert res.exit_code == 0 and res.output.rstrip().splitlines()[-1].strip().startswith("fxnas pipeline -c ")
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"steps": {"a": {"type": "Nope"}}}))
    res = CliRunner().invoke(main, ["pipeline", "-c", str(tmp_path / "p.yaml")])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1 and "unknown pipeline step 'Nope'" \
        in res.stderr
