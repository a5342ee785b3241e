"""The Command tuning target: an external program run once per trial, its metric read from its output.

The params go into the command line: ``{name}`` in an argument is replaced by the param's value, and a param
no argument names is appended as ``--name=value``. ``{python}`` is this Python interpreter and
``{trial_dir}`` the trial's own folder (also in the environment as ``FXNAS_TRIAL_DIR``). The metric is the
last line the program prints (a number, or a JSON object of metrics), or the JSON file ``metric_file`` it
writes. A printed JSON object with a ``step`` key is an intermediate report: the pruner sees it, and a
pruned trial's program is stopped.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..options import FilePath
from ..space import SearchSpace
from .target import TUNE_TARGETS, Pruned, TrialFailed, TrialRun, TuneTarget


def parse_metrics(text: str, metric: str, where: str) -> dict[str, float]:
    """Metrics from ``text``: a number (named ``metric``) or a JSON object of numbers; TrialFailed otherwise."""
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {metric: float(value)}
    if isinstance(value, dict):
        nums = {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if nums:
            return nums
    raise TrialFailed(f"{where} holds no metric: {text[-200:]!r} is neither a number nor a JSON object of metrics")


def _report_line(line: str) -> dict[str, Any] | None:
    """The intermediate report a stdout line holds (a JSON object with an integer ``step``), or None."""
    s = line.strip()
    if not (s.startswith("{") and '"step"' in s):
        return None
    try:
        value = json.loads(s)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("step"), int) else None


@TUNE_TARGETS.register("Command")
class Command(TuneTarget):
    """An external command per trial (a list of arguments, or one string split like a shell); its metric is
    its last stdout line (a number or a JSON object) or the JSON file ``metric_file`` (relative to the trial
    folder). ``metric`` names a bare number. Runs in ``cwd`` (default: the tune config's folder) with
    ``env`` added; stopped after ``timeout`` seconds (the trial fails).
    """

    def __init__(self, command: str | list[str], metric: str = "value", metric_file: str | None = None,
                 timeout: float | None = None, cwd: FilePath | None = None, env: dict[str, str] | None = None,
                 base_dir: str | None = None) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if not self.argv:
            raise ConfigError("target.command is empty; give the program and its arguments, e.g. "
                              "[python, train.py, --lr, '{lr}']")
        self.metric, self.metric_file, self.timeout = metric, metric_file, timeout
        self.cwd = str(cwd) if cwd is not None else base_dir
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.default_metric = metric

    def check(self, space: SearchSpace) -> None:
        """Placeholders must name params (or python / trial_dir)."""
        import re

        known = set(space.discrete()) | {"python", "trial_dir"}
        for a in self.argv + ([self.metric_file] if self.metric_file else []):
            for name in re.findall(r"\{([^{}]+)\}", a):
                if name not in known:
                    from ..options import closest_hint

                    raise ConfigError(f"target.command: {{{name}}} names no param{closest_hint(name, sorted(known))} "
                                      f"Params: {', '.join(sorted(space.discrete()))}")

    def command_line(self, params: Mapping[str, Any], trial_dir: Path) -> list[str]:
        """The argv of one trial: placeholders filled, unnamed params appended as ``--name=value``."""
        subs = {"python": sys.executable, "trial_dir": str(trial_dir), **{k: str(v) for k, v in params.items()}}
        used: set[str] = set()
        argv = []
        for a in self.argv:
            for k, v in subs.items():
                if "{" + k + "}" in a:
                    a = a.replace("{" + k + "}", v)
                    used.add(k)
            argv.append(a)
        return argv + [f"--{k}={v}" for k, v in params.items() if k not in used]

    def evaluate(self, params: Mapping[str, Any], trial: TrialRun) -> dict[str, float]:
        """Run the command; its metrics (intermediate reports go to the trial's pruner)."""
        argv = self.command_line(params, trial.workdir)
        env = {**os.environ, **self.env, "FXNAS_TRIAL_DIR": str(trial.workdir)}
        err_path = trial.workdir / "stderr.txt"
        try:
            with open(err_path, "w") as err, open(trial.workdir / "stdout.txt", "w") as out:
                proc = subprocess.Popen(argv, cwd=self.cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                        bufsize=1)
                last, timed_out = self._follow(proc, out, trial)
        except FileNotFoundError as exc:
            raise TrialFailed(f"cannot run {argv[0]!r}: {exc.strerror}") from None
        if timed_out:
            raise TrialFailed(f"timed out after {self.timeout} s")
        if proc.returncode != 0:
            tail = err_path.read_text().strip().splitlines()[-1:] if err_path.exists() else []
            raise TrialFailed(f"exit code {proc.returncode}" + (f": {tail[0][-300:]}" if tail else ""))
        if self.metric_file:
            path = trial.workdir / self.metric_file.replace("{trial_dir}", str(trial.workdir))
            if not path.is_file():
                raise TrialFailed(f"the command wrote no metric file {self.metric_file!r} in its trial folder")
            return parse_metrics(path.read_text(), self.metric, f"metric file {self.metric_file}")
        if last is None:
            raise TrialFailed("the command printed nothing (its last stdout line holds the metric)")
        return parse_metrics(last, self.metric, "the last stdout line")

    def _follow(self, proc: subprocess.Popen, out: Any, trial: TrialRun) -> tuple[str | None, bool]:
        """Read stdout to the end (reports to the pruner); (last non-empty line, timed out)."""
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(self.timeout, kill) if self.timeout else None
        if timer is not None:
            timer.start()
        last = None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if line.strip():
                    last = line
                rep = _report_line(line)
                if rep is not None:
                    metrics = {k: float(v) for k, v in rep.items() if k != "step" and isinstance(v, (int, float))
                               and not isinstance(v, bool)}
                    try:
                        trial.report(rep["step"], metrics)
                    except Pruned:
                        proc.terminate()
                        proc.wait(timeout=30)
                        raise
            proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
        return last, expired.is_set()
