"""`fxnas search`: the packaged demo (shortened) end to end, one-line errors with exit code 2."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from fxnas.cli.search_cmd import search

SHORT_DEMO = ["-o", "estim.0.epochs=1", "-o", "estim.1.epochs=1", "-o", "estim.2.epochs=1",
              "-o", "trainer.max_steps_per_epoch=6", "-o", "estim.1.checkpoint_steps=2"]


def test_demo_runs_and_prints_the_best_arch(tmp_path):
    res = CliRunner().invoke(search, ["-c", "demo", "--out-root", str(tmp_path), *SHORT_DEMO])
    assert res.exit_code == 0, res.output
    # piped (not a terminal): one line per record, longer than 80 columns and unbroken, and no progress bars
    records = res.stderr.splitlines()
    best_line = next(line for line in records if line.startswith("best arch: {"))
    assert len(best_line) > 80 and best_line.endswith("}") and "" not in records
    assert "best architecture" in res.stdout and "acc" in res.stdout and "test_acc" in res.stdout
    out = tmp_path / "demo"
    for f in ("log.txt", "history.jsonl", "arch_best.yaml", "alphas.jsonl", "checkpoint.pt", "config.yaml",
              "subnet.pt", "subnet.onnx"):
        assert (out / f).exists(), f
    history = [json.loads(s) for s in (out / "history.jsonl").read_text().splitlines()]
    assert [h["info"]["stage"] for h in history] == [0, 1, 2]
    best = yaml.safe_load((out / "arch_best.yaml").read_text())
    assert best["arch"] == history[2]["arch"] or best["metrics"]["acc"] >= history[2]["metrics"]["acc"]
    for param, value in best["arch"].items():  # every chosen op is printed
        assert param in res.stdout and value in res.stdout
    assert len((out / "alphas.jsonl").read_text().splitlines()) == 3
    assert yaml.safe_load((out / "config.yaml").read_text())["trainer"]["options"]["max_steps_per_epoch"] == 6


def one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_unknown_names_get_one_line_with_close_names(tmp_path):
    res = CliRunner().invoke(search, ["-c", "demo", "-o", "optim.type=BinaryGat", "--out-root", str(tmp_path)])
    line = one_line_error(res)
    assert line.startswith("Error: optim.type: unknown optimizer 'BinaryGat'; did you mean BinaryGate")


def test_bad_yaml_and_missing_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    assert "not valid YAML" in one_line_error(CliRunner().invoke(search, ["-c", str(bad)]))
    line = one_line_error(CliRunner().invoke(search, ["-c", "no_such_config"]))
    assert "neither a file nor a packaged config" in line and "demo" in line
    bad.write_text(yaml.safe_dump({"model": "tiny_net", "optim": "Random", "estim": "Default", "tranier": {}}))
    assert "did you mean trainer" in one_line_error(CliRunner().invoke(search, ["-c", str(bad)]))


def test_usage_errors_exit_2():
    res = CliRunner().invoke(search, [])
    assert res.exit_code == 2 and "Missing option" in res.output


def test_search_is_a_subcommand_of_fxnas():
    from fxnas.cli.main import main

    res = CliRunner().invoke(main, ["search", "--help"])
    assert res.exit_code == 0 and "--resume" in res.output and "-o" in res.output
