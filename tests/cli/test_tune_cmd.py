"""`fxnas tune`: it runs a tune config, refuses to replace a run without --resume/--overwrite, resumes with a
larger budget, ends --help with an example and reports bad input in one line."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from fxnas.cli.main import main

SCRIPT = "import sys\nx = float(sys.argv[1].split('=')[1])\nprint(-(x - 0.25) ** 2)\n"


def test_tune_runs_a_command_config(tmp_path):
    (tmp_path / "f.py").write_text(SCRIPT)
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump({
        "target": {"type": "Command", "command": ["{python}", "f.py"]}, "space": {"x": {"low": 0.0, "high": 1.0}},
        "optim": "Random", "budget": 3}))
    res = CliRunner().invoke(main, ["tune", "-c", str(tmp_path / "tune.yaml"), "--out-root", str(tmp_path / "o"),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    assert "x = " in res.stdout and "trials: 3 (0 pruned, 0 failed)" in res.stdout
    assert (tmp_path / "o" / "tune" / "best.yaml").is_file()
    again = CliRunner().invoke(main, ["tune", "-c", str(tmp_path / "tune.yaml"), "--out-root", str(tmp_path / "o")])
    assert again.exit_code == 2 and "use --resume to continue or --overwrite" in again.stderr
    resumed = CliRunner().invoke(main, ["tune", "-c", str(tmp_path / "tune.yaml"), "--out-root", str(tmp_path / "o"),
                                        "--resume", "--quiet", "-o", "budget=4"])
    assert resumed.exit_code == 0 and "trials: 4" in resumed.stdout


def test_help_ends_with_an_example_and_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(main, ["tune", "--help"])
    assert res.exit_code == 0 and res.output.rstrip().splitlines()[-1].strip().startswith("fxnas tune -c ")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"target": "Command", "space": {"x": [1]}}))
    res = CliRunner().invoke(main, ["tune", "-c", str(tmp_path / "bad.yaml")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.stderr.strip().splitlines() == ["Error: target: Command needs 'command' (command: str | list of str)"]
