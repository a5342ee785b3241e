"""The Command target: the command line of a trial, metrics from the last line or a file, failures as
TrialFailed with the reason, intermediate reports to the pruner (a pruned program is stopped)."""

from __future__ import annotations

import pytest

from fxnas.errors import ConfigError
from fxnas.optim import TrialPruner
from fxnas.tune import TUNE_TARGETS, Pruned, TrialFailed, TrialRun, tune_space
from fxnas.tune.command import parse_metrics


def command(**options):
    return TUNE_TARGETS.build({"type": "Command", **options}, where="target")


class StopAt(TrialPruner):
    """Prunes at a given step; remembers what it saw."""

    def __init__(self, step: int) -> None:
        self.step, self.seen = step, []

    def report(self, step, metrics):
        self.seen.append((step, dict(metrics)))
        return step >= self.step


def test_placeholders_and_appended_arguments(tmp_path):
    c = command(command=["{python}", "run.py", "--lr", "{lr}", "--out", "{trial_dir}/m.json"])
    argv = c.command_line({"lr": 0.1, "depth": 3}, tmp_path)
    assert argv[1:] == ["run.py", "--lr", "0.1", "--out", f"{tmp_path}/m.json", "--depth=3"]
    with pytest.raises(ConfigError, match=r"\{lrr\} names no param; did you mean lr\?"):
        command(command="python run.py --lr {lrr}").check(tune_space({"lr": [0.1]}))


def test_metric_from_the_last_line(bowl, tmp_path):
    c = command(command=["{python}", str(bowl)], metric="score")
    pruner = StopAt(99)
    metrics = c.evaluate({"x": 0.5, "y": 0.7}, TrialRun(0, tmp_path, pruner))
    assert metrics == {"score": pytest.approx(-0.04)}
    assert [s for s, _ in pruner.seen] == [0, 1, 2]
    assert pruner.seen[0][1] == {"value": pytest.approx(-0.12)}
    assert "-0.04" in (tmp_path / "stdout.txt").read_text()


def test_metrics_from_a_json_file(tmp_path):
    script = tmp_path / "w.py"
    script.write_text("import json, os, sys\n"
                      "json.dump({'acc': float(sys.argv[1].split('=')[1]), 'note': 'x'}, "
                      "open(os.path.join(os.environ['FXNAS_TRIAL_DIR'], 'result.json'), 'w'))\n")
    c = command(command=["{python}", str(script)], metric_file="result.json")
    assert c.evaluate({"acc": 0.25}, TrialRun(0, tmp_path)) == {"acc": 0.25}


def test_failures_say_why(bowl, tmp_path):
    c = command(command=["{python}", str(bowl), "--fail_above", "0.5"])
    with pytest.raises(TrialFailed, match="exit code 1: x too large"):
        c.evaluate({"x": 0.9}, TrialRun(0, tmp_path))
    slow = command(command=["{python}", str(bowl), "--sleep", "5"], timeout=0.5)
    with pytest.raises(TrialFailed, match="timed out after 0.5 s"):
        slow.evaluate({"x": 0.1}, TrialRun(1, tmp_path))
    silent = command(command=["{python}", "-c", "print('no number here')"])
    with pytest.raises(TrialFailed, match="neither a number nor a JSON object"):
        silent.evaluate({"x": 0.1}, TrialRun(2, tmp_path))
    with pytest.raises(TrialFailed, match="cannot run 'no-such-program-here'"):
        command(command="no-such-program-here").evaluate({"x": 0.1}, TrialRun(3, tmp_path))
    assert parse_metrics('{"acc": 1, "ok": true}', "value", "x") == {"acc": 1.0}


def test_a_pruned_program_is_stopped(bowl, tmp_path):
    progress = tmp_path / "progress.txt"
    c = command(command=["{python}", str(bowl), "--steps", "50", "--sleep", "0.05", "--progress", str(progress)])
    with pytest.raises(Pruned) as info:
        c.evaluate({"x": 0.1}, TrialRun(0, tmp_path, StopAt(2)))
    assert info.value.step == 2
    steps = progress.read_text().split()
    assert len(steps) < 20  # stopped long before its 50 steps
