"""Pipeline runs: dependency order, values passed between steps, independent steps at the same time, a
failure stopping only its dependants, reruns skipping up-to-date steps and rerunning changed ones, nesting."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml

from fxnas.pipeline import PIPELINE_STEPS, Step, StepFailed, load_pipeline, run_pipeline

CALLS: list[str] = []


@pytest.fixture
def steps():
    """Stand-in steps: Add (writes its sum to a file), Fail, Meet (two must run at once)."""
    barrier = threading.Barrier(2, timeout=20)
    CALLS.clear()
    with PIPELINE_STEPS.scoped():
        @PIPELINE_STEPS.register("Add")
        class Add(Step):
            """a + b, written to sum.txt."""

            outputs = ("total", "file")

            def __init__(self, a: float, b: float = 0.0) -> None:
                self.a, self.b = a, b

            def run(self, ctx):
                CALLS.append(ctx.name)
                path = ctx.workdir / "sum.txt"
                path.write_text(str(self.a + self.b))
                return {"total": self.a + self.b, "file": str(path.resolve())}

        @PIPELINE_STEPS.register("Fail")
        class Fail(Step):
            """Always fails."""

            def run(self, ctx):
                CALLS.append(ctx.name)
                raise StepFailed("it had to")

        @PIPELINE_STEPS.register("Meet")
        class Meet(Step):
            """Waits for another Meet step running at the same time."""

            outputs = ("met",)

            def run(self, ctx):
                barrier.wait()  # BrokenBarrierError (the step fails) unless another step runs now
                return {"met": True}

        yield


def pipe(tmp_path: Path, steps: dict, **extra) -> dict:
    return load_pipeline({"name": "p", "out_root": str(tmp_path), "progress": False, "steps": steps, **extra})


CHAIN = {"one": {"type": "Add", "a": 1, "inputs": {"b": "params.base"}},
         "two": {"type": "Add", "a": 10, "inputs": {"b": "one.total"}},
         "three": {"type": "Add", "inputs": {"a": "two.total", "b": "one.total"}}}


def test_values_flow_in_dependency_order(steps, tmp_path):
    report = run_pipeline(pipe(tmp_path, {"three": CHAIN["three"], "two": CHAIN["two"], "one": CHAIN["one"]},
                               params={"base": 2}))
    assert CALLS == ["one", "two", "three"]
    assert {n: s["outputs"]["total"] for n, s in report.items()} == {"one": 3, "two": 13, "three": 16}
    saved = json.loads((tmp_path / "p" / "pipeline.json").read_text())
    assert saved["three"]["status"] == "done"
    assert (tmp_path / "p" / "three" / "sum.txt").read_text() == "16"


def test_a_rerun_skips_what_is_up_to_date_and_reruns_what_changed(steps, tmp_path):
    run_pipeline(pipe(tmp_path, CHAIN, params={"base": 2}))
    CALLS.clear()
    report = run_pipeline(pipe(tmp_path, CHAIN, params={"base": 2}))
    assert CALLS == [] and {s["status"] for s in report.values()} == {"skipped"}
    assert report["three"]["outputs"]["total"] == 16  # recorded outputs are passed on
    changed = {**CHAIN, "two": {**CHAIN["two"], "a": 20}}
    report = run_pipeline(pipe(tmp_path, changed, params={"base": 2}))
    assert CALLS == ["two", "three"] and report["three"]["outputs"]["total"] == 26
    CALLS.clear()
    (tmp_path / "p" / "one" / "sum.txt").unlink()  # an output file is gone: that step runs again
    run_pipeline(pipe(tmp_path, changed, params={"base": 2}))
    assert CALLS == ["one"]  # same outputs, so its dependants stay up to date
    CALLS.clear()
    run_pipeline(pipe(tmp_path, changed, params={"base": 2}), force=["three"])
    assert CALLS == ["three"]


def test_a_failed_step_stops_only_its_dependants(steps, tmp_path):
    report = run_pipeline(pipe(tmp_path, {
        "bad": {"type": "Fail"}, "after_bad": {"type": "Add", "a": 1, "after": ["bad"]},
        "later": {"type": "Add", "inputs": {"a": "after_bad.total"}},
        "good": {"type": "Add", "a": 1}, "after_good": {"type": "Add", "inputs": {"a": "good.total"}, "b": 1}}))
    assert {n: s["status"] for n, s in report.items()} == {
        "bad": "failed", "after_bad": "blocked", "later": "blocked", "good": "done", "after_good": "done"}
    assert report["bad"]["reason"] == "it had to" and report["later"]["reason"] == "after_bad blocked"
    assert "after_bad" not in CALLS and report["after_good"]["outputs"]["total"] == 2


def test_independent_steps_run_at_the_same_time(steps, tmp_path):
    report = run_pipeline(pipe(tmp_path, {"left": {"type": "Meet"}, "right": {"type": "Meet"},
                                          "join": {"type": "Add", "a": 1, "after": ["left", "right"]}},
                               parallel={"backend": "thread", "workers": 2}))
    assert {n: s["status"] for n, s in report.items()} == {"left": "done", "right": "done", "join": "done"}


def test_pipelines_nest(steps, tmp_path):
    inner = tmp_path / "inner.yaml"
    inner.write_text(yaml.safe_dump({"params": {"x": 0}, "steps": {
        "double": {"type": "Add", "inputs": {"a": "params.x", "b": "params.x"}}}}))
    report = run_pipeline(pipe(tmp_path, {
        "first": {"type": "Add", "a": 5},
        "sub": {"type": "Pipeline", "config": str(inner), "inputs": {"params": "first"}},
        "last": {"type": "Add", "inputs": {"a": "sub.double.total"}}}))
    assert report["last"]["outputs"]["total"] == 0  # the inner pipeline got params {total: 5, file: ...}
    report = run_pipeline(pipe(tmp_path, {
        "sub": {"type": "Pipeline", "config": str(inner), "params": {"x": 4}},
        "last": {"type": "Add", "inputs": {"a": "sub.double.total"}}}))
    assert report["last"]["outputs"]["total"] == 8
    assert (tmp_path / "p" / "sub" / "pipeline" / "double" / "sum.txt").read_text() == "8"


def test_a_python_step_and_a_command_step(tmp_path):
    fns = tmp_path / "fns.py"
    fns.write_text("def scale(x, workdir):\n    return {'y': 2 * x, 'where': workdir}\n")
    report = run_pipeline(pipe(tmp_path, {
        "py": {"type": "Python", "fn": f"{fns}:scale", "args": {"x": 3}},
        "cmd": {"type": "Command", "command": ["{python}", "-c", "import json, sys; print(json.dumps("
                                               "{'z': int(sys.argv[1]) + 1}))", "{y}"],
                "inputs": {"args": "py"}},
        "boom": {"type": "Command", "command": ["{python}", "-c", "raise SystemExit('no way')"]}}))
    assert report["py"]["outputs"]["y"] == 6 and report["py"]["outputs"]["where"] == str(tmp_path / "p" / "py")
    assert report["cmd"]["outputs"]["z"] == 7
    assert report["boom"]["status"] == "failed" and report["boom"]["reason"] == "exit code 1: no way"
