"""An experiment's output folder: its files, written atomically, and its checkpoint, read without unpickling.

``<out_root>/<name>/`` holds ``log.txt``, ``history.jsonl``, ``arch_best.yaml``, ``alphas.jsonl``,
``config.yaml``, ``checkpoint.pt`` (+ ``checkpoint.json``), the exported subnet (``subnet.pt``, its weights
alone in ``subnet_state.pt``), ``summary.json`` (written last: the run finished) and, for searches evaluated on
workers, ``evaluations.jsonl`` (the journal of finished evaluations, fxnas.async_loop). Whole files are written
to a temporary name and renamed, so a killed run never leaves half a file; append-only logs are cut back to
the checkpoint on resume. A checkpoint holds tensors and plain data only and is read with
``torch.load(weights_only=True)``: a crafted file cannot run code.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from .errors import ConfigError
from .rng import jsonable

OUTPUTS = ("log.txt", "history.jsonl", "evaluations.jsonl", "alphas.jsonl", "arch_best.yaml", "checkpoint.pt",
           "checkpoint.json", "config.yaml", "subnet.pt", "subnet_state.pt", "subnet.onnx", "pareto.json",
           "pareto.png", "summary.json")


class CheckpointError(ConfigError):
    """A checkpoint that cannot be loaded: truncated, not a checkpoint, or holding code."""


def check_writable(folder: Path) -> None:
    """ConfigError, up front, when ``folder`` cannot be created or written (a file in the way, no permission)."""
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"output folder {str(folder)!r} cannot be made: {str(p)!r} is a file")
            if not os.access(p, os.W_OK | os.X_OK):
                raise ConfigError(f"output folder {str(folder)!r} cannot be written: no write permission on "
                                  f"{str(p)!r}; choose another --out-root")
            return


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data)
    os.replace(tmp, path)


def truncate_lines(path: Path, n: int) -> None:
    """Keep the first ``n`` lines of ``path`` (a killed run may have written past its last checkpoint)."""
    if path.exists():
        atomic_write(path, "".join(path.read_text().splitlines(keepends=True)[:n]))


class ExperimentFolder:
    """The files of one experiment run."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)

    def path(self, name: str) -> Path:
        """``out_dir / name`` (the folder is created)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name

    def check(self) -> None:
        """ConfigError when the folder cannot be created or written."""
        check_writable(self.out_dir)

    def append_line(self, name: str, line: str) -> None:
        """Append one line to an append-only log."""
        with open(self.path(name), "a") as f:
            f.write(line.rstrip("\n") + "\n")

    def append_json(self, name: str, row: Mapping[str, Any]) -> None:
        """Append one JSON record (a line) to ``name``."""
        self.append_line(name, json.dumps(jsonable(row)))

    def write_yaml(self, name: str, data: Any) -> Path:
        """Write ``data`` as YAML, atomically."""
        path = self.path(name)
        atomic_write(path, yaml.safe_dump(jsonable(data), sort_keys=False))
        return path

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as JSON, atomically."""
        path = self.path(name)
        atomic_write(path, json.dumps(jsonable(data)))
        return path

    def clear(self) -> None:
        """Remove what an earlier run of this name left (a fresh run, with --overwrite)."""
        for f in OUTPUTS:
            (self.out_dir / f).unlink(missing_ok=True)

    def cut_back(self, history_lines: int, alpha_lines: int) -> None:
        """Cut the append-only logs back to what the checkpoint knows of."""
        truncate_lines(self.out_dir / "history.jsonl", history_lines)
        truncate_lines(self.out_dir / "alphas.jsonl", alpha_lines)

    # --- checkpoints ------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        """``checkpoint.pt``."""
        return self.out_dir / "checkpoint.pt"

    def checkpoint_time(self) -> str | None:
        """When the checkpoint was written (local time), or None when there is none."""
        if not self.checkpoint_path.exists():
            return None
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.checkpoint_path.stat().st_mtime))

    def save_checkpoint(self, state: Mapping[str, Any], summary: Mapping[str, Any]) -> Path:
        """Write checkpoint.pt (tensors and plain data) and checkpoint.json, each atomically."""
        path = self.path("checkpoint.pt")
        tmp = path.with_name(path.name + ".tmp")
        torch.save(dict(state), tmp)
        os.replace(tmp, path)
        self.write_json("checkpoint.json", {**summary, "time": time.time()})
        return path

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The saved state, or None when there is no checkpoint; CheckpointError when it cannot be trusted."""
        path = self.checkpoint_path
        if not path.exists():
            return None
        where = str(path)
        if path.stat().st_size == 0:
            raise CheckpointError(f"{where} is empty (a run killed while writing it?); start again with "
                                  f"--overwrite")
        try:  # RNG states stay CPU tensors; weights move to their params' devices on load
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{where} holds Python objects beyond tensors and plain data, which could run "
                                  f"code when loaded, so it is refused ({first[:160]}); fxnas checkpoints never "
                                  f"hold them: delete it or start again with --overwrite") from None
        except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
            first = str(exc).splitlines()[0].split(". ")[0][:160] if str(exc) else ""  # torch's first sentence
            raise CheckpointError(f"{where} is truncated or not an fxnas checkpoint ({type(exc).__name__}: "
                                  f"{first}); start again with --overwrite") from None
        if not isinstance(state, dict) or "version" not in state:
            raise CheckpointError(f"{where} is not an fxnas checkpoint (no version); start again with --overwrite")
        return state


class ReaderFolder(ExperimentFolder):
    """The run folder as a data-parallel rank other than 0 sees it: it reads the checkpoint (``--resume``) and
    writes nothing there, since rank 0 writes every output once; files a step needs to write anyway go to a
    private temporary folder."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        super().__init__(out_dir)
        self._scratch: Path | None = None

    def path(self, name: str) -> Path:
        """``name`` in this process's temporary folder (never the run folder)."""
        if self._scratch is None:
            import tempfile

            self._scratch = Path(tempfile.mkdtemp(prefix="fxnas-rank-"))
        return self._scratch / name

    def check(self) -> None:
        """Nothing to check: rank 0 checks the folder it writes."""

    def append_line(self, name: str, line: str) -> None:
        """Nothing: rank 0 writes the logs."""

    def write_yaml(self, name: str, data: Any) -> Path:
        """Nothing written: rank 0 writes the file."""
        return self.out_dir / name

    def write_json(self, name: str, data: Any) -> Path:
        """Nothing written: rank 0 writes the file."""
        return self.out_dir / name

    def clear(self) -> None:
        """Nothing: rank 0 clears the folder."""

    def cut_back(self, history_lines: int, alpha_lines: int) -> None:
        """Nothing: rank 0 cuts its logs back."""

    def save_checkpoint(self, state: Mapping[str, Any], summary: Mapping[str, Any]) -> Path:
        """Nothing written: rank 0 saves the checkpoint."""
        return self.checkpoint_path
