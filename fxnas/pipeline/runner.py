"""Running a pipeline: steps in topological order, independent ones at the same time on the executor.

Each step runs in ``<out_root>/<name>/<step>/`` and, when it succeeds, leaves ``step.json`` there: its
fingerprint (step type, options with the inputs filled in, and the contents of the files they name), its
outputs and its output files. On a rerun a step whose fingerprint is unchanged and whose files all exist is
skipped, its recorded outputs passed on; a failed step stops only the steps that depend on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

import networkx as nx
from rich.console import Console

from ..errors import ConfigError, FxnasError
from ..outputs import atomic_write
from ..pool import make_executor
from ..progress import Display
from ..rng import jsonable
from .config import PARAMS, split_ref
from .graph import run_order, step_graph
from .step import PIPELINE_STEPS, StepFailed, StepRun

RECORD = "step.json"


def lookup(outputs: Mapping[str, Any], step: str, keys: Sequence[str], where: str) -> Any:
    """The value at ``step.key.key...`` of the finished steps' outputs."""
    value: Any = outputs[step]
    for i, k in enumerate(keys):
        if not isinstance(value, Mapping) or k not in value:
            have = ", ".join(map(str, value)) if isinstance(value, Mapping) else type(value).__name__
            raise ConfigError(f"{where}: {'.'.join([step, *keys[:i]])} has no {k!r} (it has: {have})")
        value = value[k]
    return value


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files_named(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if os.path.isabs(value) and os.path.isfile(value) else []
    if isinstance(value, Mapping):
        return [p for v in value.values() for p in _files_named(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _files_named(v)]
    return []


def fingerprint(step_type: str, options: Mapping[str, Any]) -> str:
    """A digest of what a step computes from: its type, its options, the contents of the files they name."""
    files = {p: _file_digest(p) for p in sorted(set(_files_named(dict(options))))}
    blob = json.dumps({"type": step_type, "options": jsonable(dict(options)), "files": files}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def run_step(step_type: str, options: dict[str, Any], name: str, workdir: str,
             imports: Sequence[str] = ()) -> dict[str, Any]:
    """Build and run one step (in a worker); ``{status: done, outputs, files, seconds}`` or ``{status: failed,
    reason}`` (never raises)."""
    t0 = time.perf_counter()
    try:
        if step_type not in PIPELINE_STEPS:  # a fresh worker process: the user's step modules are not imported yet
            from ..userobj import import_modules

            import_modules(list(imports))
        step = PIPELINE_STEPS.build({"type": step_type, **options}, where=f"steps.{name}")
        ctx = StepRun(name, Path(workdir))
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        outputs = step.run(ctx)
        if not isinstance(outputs, Mapping):
            raise ConfigError(f"step {name} ({step_type}) returned {type(outputs).__name__}, not a mapping")
        return {"status": "done", "outputs": jsonable(dict(outputs)), "files": step.files(outputs, ctx),
                "seconds": time.perf_counter() - t0}
    except (FxnasError, StepFailed) as exc:
        reason = " ".join(str(exc).split())
    except Exception as exc:  # a bug or a failure in user code: one line naming where it happened
        where = traceback.extract_tb(exc.__traceback__)[-1]
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())} ({Path(where.filename).name}:{where.lineno})"
    return {"status": "failed", "reason": reason, "seconds": time.perf_counter() - t0}


class PipelineRun:
    """The bookkeeping of one run: statuses, outputs, the step records on disk."""

    def __init__(self, cfg: Mapping[str, Any], display: Display, force: Sequence[str] = ()) -> None:
        self.cfg, self.display = cfg, display
        self.out_dir = Path(cfg["out_root"]) / cfg["name"]
        self.graph: nx.DiGraph = step_graph(cfg["steps"])
        self.order = run_order(self.graph)
        unknown = [f for f in force if f not in cfg["steps"]]
        if unknown:
            raise ConfigError(f"--force {unknown[0]}: no such step; steps: {', '.join(self.order)}")
        self.force = set(force)
        self.report: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, Any] = {PARAMS: dict(cfg["params"])}

    def workdir(self, name: str) -> Path:
        """The folder of step ``name``."""
        return (self.out_dir / name).resolve()

    def log(self, msg: str, style: str | None = None) -> None:
        """Append to log.txt and print."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "log.txt", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        self.display.print(msg, style=style)

    def finish(self, name: str, entry: dict[str, Any]) -> None:
        """Record the outcome of step ``name``."""
        self.report[name] = entry
        if entry["status"] in ("done", "skipped"):
            self.outputs[name] = entry["outputs"]
        shown = {"done": f"done in {entry.get('seconds', 0):.1f} s", "skipped": "skipped (up to date)",
                 "failed": f"failed: {entry.get('reason')}", "blocked": f"not run: {entry.get('reason')}"}
        self.log(f"{name}: {shown[entry['status']]}", style="red" if entry["status"] == "failed" else None)

    def options(self, name: str) -> dict[str, Any]:
        """The step's options with its inputs filled in from the finished steps."""
        s = self.cfg["steps"][name]
        opts = dict(s["options"])
        for opt, ref in s["inputs"].items():
            step, keys = split_ref(ref, "")
            opts[opt] = lookup(self.outputs, step, keys, f"steps.{name}.inputs.{opt}")
        return opts

    def up_to_date(self, name: str, digest: str) -> dict[str, Any] | None:
        """The record of an earlier successful run with this fingerprint whose files all exist, or None."""
        path = self.workdir(name) / RECORD
        if name in self.force or not path.is_file():
            return None
        try:
            rec = json.loads(path.read_text())
        except ValueError:
            return None
        if rec.get("fingerprint") != digest or not all(Path(f).exists() for f in rec.get("files", [])):
            return None
        return rec

    def save_record(self, name: str, digest: str, result: Mapping[str, Any]) -> None:
        """Write step.json for a step that succeeded."""
        atomic_write(self.workdir(name) / RECORD, json.dumps(
            {"type": self.cfg["steps"][name]["type"], "fingerprint": digest, "outputs": result["outputs"],
             "files": result["files"], "finished": time.time()}, indent=1))

    def blocked_by(self, name: str) -> str | None:
        """The first dependency of ``name`` that failed or was not run, or None."""
        for dep in self.graph.predecessors(name):
            if self.report.get(dep, {}).get("status") in ("failed", "blocked"):
                return dep
        return None

    def ready(self, name: str) -> bool:
        """True when every dependency of ``name`` finished (done or skipped)."""
        return all(self.report.get(d, {}).get("status") in ("done", "skipped") for d in self.graph.predecessors(name))


def run_pipeline(cfg: Mapping[str, Any], console: Console | None = None, progress: bool | None = None,
                 force: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Run a validated pipeline; per step ``{status: done|skipped|failed|blocked, outputs, reason, seconds}``
    (written to pipeline.json too). ``force`` names steps to run again even when up to date."""
    show = cfg.get("progress", True) if progress is None else progress
    run = PipelineRun(cfg, Display(console, show), force)
    workers = cfg["parallel"]["workers"]
    in_flight: dict[Future, tuple[str, str]] = {}
    with make_executor(cfg["parallel"]) as ex:
        while len(run.report) < len(run.order):
            for name in run.order:
                if name in run.report or name in {n for n, _ in in_flight.values()}:
                    continue
                dep = run.blocked_by(name)
                if dep is not None:
                    run.finish(name, {"status": "blocked", "reason": f"{dep} {run.report[dep]['status']}"})
                    continue
                if not run.ready(name) or len(in_flight) >= workers:
                    continue
                try:
                    opts = run.options(name)
                except ConfigError as exc:
                    run.finish(name, {"status": "failed", "reason": str(exc)})
                    continue
                digest = fingerprint(cfg["steps"][name]["type"], opts)
                rec = run.up_to_date(name, digest)
                if rec is not None:
                    run.finish(name, {"status": "skipped", "outputs": rec["outputs"]})
                    continue
                if (run.workdir(name) / RECORD).exists():  # inputs changed: the old outputs are stale
                    shutil.rmtree(run.workdir(name))
                run.log(f"{name}: running {cfg['steps'][name]['type']}")
                fut = ex.submit(run_step, cfg["steps"][name]["type"], opts, name, str(run.workdir(name)),
                                list(cfg.get("imports") or []))
                in_flight[fut] = (name, digest)
            if not in_flight:
                continue  # skips and blocks may have made more steps ready
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for fut in done:
                name, digest = in_flight.pop(fut)
                try:
                    result = fut.result()
                except Exception as exc:  # the worker process itself died
                    result = {"status": "failed", "reason": f"worker lost: {type(exc).__name__}: {exc}"}
                if result["status"] == "done":
                    run.save_record(name, digest, result)
                run.finish(name, result)
    atomic_write(run.out_dir / "pipeline.json", json.dumps(jsonable(run.report), indent=1))
    return run.report
