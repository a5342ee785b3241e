"""General steps: Command (an external program), Python (a function of a user file), Pipeline (nested)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..options import FilePath
from .step import PIPELINE_STEPS, Step, StepFailed, StepRun


@PIPELINE_STEPS.register("Command")
class Command(Step):
    """Run a program in the step folder: ``{name}`` in an argument is replaced by ``args[name]`` (``{python}``
    is this interpreter, ``{workdir}`` the step folder). Outputs: the JSON object its last stdout line holds
    (none when it prints none), plus ``stdout`` (stdout.txt). A non-zero exit fails the step."""

    def __init__(self, command: str | list[str], args: dict[str, Any] | None = None, timeout: float | None = None,
                 env: dict[str, str] | None = None) -> None:
        import shlex

        self.argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if not self.argv:
            raise ConfigError("Command: command is empty; give the program and its arguments")
        self.args, self.timeout = dict(args or {}), timeout
        self.env = {str(k): str(v) for k, v in (env or {}).items()}

    def run(self, ctx: StepRun) -> dict[str, Any]:
        """Run it; the JSON of its last line."""
        import sys

        subs = {"python": sys.executable, "workdir": str(ctx.workdir.resolve()),
                **{k: v if isinstance(v, str) else json.dumps(v) for k, v in self.args.items()}}
        argv = []
        for a in self.argv:
            for k, v in subs.items():
                a = a.replace("{" + k + "}", v)
            argv.append(a)
        try:
            res = subprocess.run(argv, cwd=ctx.workdir, env={**os.environ, **self.env}, capture_output=True,
                                 text=True, timeout=self.timeout)
        except FileNotFoundError as exc:
            raise StepFailed(f"cannot run {argv[0]!r}: {exc.strerror}") from None
        except subprocess.TimeoutExpired:
            raise StepFailed(f"timed out after {self.timeout} s") from None
        (ctx.workdir / "stdout.txt").write_text(res.stdout)
        (ctx.workdir / "stderr.txt").write_text(res.stderr)
        if res.returncode != 0:
            tail = res.stderr.strip().splitlines()[-1:] or [""]
            raise StepFailed(f"exit code {res.returncode}: {tail[0][-300:]}")
        lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
        out: dict[str, Any] = {}
        if lines:
            try:
                last = json.loads(lines[-1])
            except ValueError:
                last = None
            if isinstance(last, dict):
                out.update(last)
        return {**out, "stdout": str((ctx.workdir / "stdout.txt").resolve())}


@PIPELINE_STEPS.register("Python")
class Python(Step):
    """Call ``fn`` (``file.py:name`` or ``module:name``) with ``args`` and ``workdir`` (the step folder, when
    it takes one); its returned mapping is the outputs."""

    def __init__(self, fn: str, args: dict[str, Any] | None = None) -> None:
        self.fn, self.args = fn, dict(args or {})

    def run(self, ctx: StepRun) -> dict[str, Any]:
        """Call the function."""
        from ..options import call_with
        from ..userobj import resolve_callable

        fn = resolve_callable(self.fn)
        assert fn is not None
        out = call_with(fn, self.args, {"workdir": str(ctx.workdir.resolve())})
        if out is None:
            return {}
        if not isinstance(out, Mapping):
            raise StepFailed(f"{self.fn} returned {type(out).__name__}; a Python step returns a mapping of outputs")
        return dict(out)


@PIPELINE_STEPS.register("Pipeline")
class Pipeline(Step):
    """Run another pipeline file in the step folder, with ``params`` replacing its own; outputs are its steps'
    outputs by step name (``inputs: {arch: sub.search.arch}``). A failed inner step fails this step."""

    def __init__(self, config: FilePath, params: dict[str, Any] | None = None) -> None:
        self.config, self.params = str(config), dict(params or {})

    def run(self, ctx: StepRun) -> dict[str, Any]:
        """Run the nested pipeline (its own finished steps are skipped as usual)."""
        from .config import load_pipeline
        from .runner import run_pipeline

        cfg = load_pipeline(self.config, params=self.params, name="pipeline", out_root=str(ctx.workdir))
        report = run_pipeline(cfg, progress=False)
        bad = {n: s for n, s in report.items() if s["status"] in ("failed", "blocked")}
        if bad:
            first = next(iter(bad))
            raise StepFailed(f"inner step {first} {bad[first]['status']}: {bad[first].get('reason', '')}")
        return {n: s["outputs"] for n, s in report.items()}
