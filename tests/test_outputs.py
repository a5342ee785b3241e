"""The output folder: checkpoints read without unpickling code, no silent overwrite, file-system errors up front."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
import yaml
from click.testing import CliRunner

from fxnas.cli.search_cmd import search
from fxnas.errors import ConfigError
from fxnas.outputs import ExperimentFolder, ReaderFolder, atomic_write

TINY = {"name": "demo", "model": {"type": "tiny_net", "width": 4},
        "construct": {"pattern": "conv3x3", "candidates": ["ORIG", "NC3"]},
        "data": {"type": "digits", "size": 8, "channels": 3}, "trainer": {"max_steps_per_epoch": 2},
        "optim": "Random", "estim": [{"type": "Uniform", "epochs": 1, "budget": 2, "bn_steps": 1}],
        "export": {"test": False}}


class Evil:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def run(tmp_path, *extra: str):
    cfg = tmp_path.parent / f"{tmp_path.name}.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    return CliRunner().invoke(search, ["-c", str(cfg), "--out-root", str(tmp_path), "--quiet", *extra])


def test_a_checkpoint_carrying_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    assert run(tmp_path).exit_code == 0
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "demo" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)  # a real checkpoint is tensors and plain data only
    state["history"].append({"arch": {}, "metrics": {}, "info": {"x": Evil(str(marker))}})
    torch.save(state, ckpt)
    res = run(tmp_path, "--resume")
    assert res.exit_code == 2 and "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds Python objects beyond tensors and plain data" in lines[0], lines
    assert not marker.exists()  # the pickle's code never ran
    with pytest.raises(pickle.UnpicklingError):  # the check is torch's weights_only loader
        torch.load(ckpt, weights_only=True)


def test_truncated_or_empty_checkpoints_are_one_line_errors(tmp_path):
    folder = ExperimentFolder(tmp_path / "x")
    folder.path("checkpoint.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="is empty"):
        folder.load_checkpoint()
    torch.save({"version": 2, "w": torch.zeros(1000)}, folder.checkpoint_path)
    data = folder.checkpoint_path.read_bytes()
    folder.checkpoint_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="truncated or not an fxnas checkpoint"):
        folder.load_checkpoint()
    torch.save({"w": torch.zeros(1)}, folder.checkpoint_path)
    with pytest.raises(ConfigError, match="not an fxnas checkpoint"):
        folder.load_checkpoint()


def test_forgetting_resume_does_not_wipe_a_checkpointed_run(tmp_path):
    assert run(tmp_path).exit_code == 0
    history = (tmp_path / "demo" / "history.jsonl").read_text()
    res = run(tmp_path)
    assert res.exit_code == 2
    assert "has a checkpoint from" in res.stderr and "use --resume to continue or --overwrite" in res.stderr
    assert (tmp_path / "demo" / "history.jsonl").read_text() == history  # untouched
    assert run(tmp_path, "--overwrite").exit_code == 0


def test_resume_with_a_structural_config_change_names_the_keys(tmp_path):
    assert run(tmp_path).exit_code == 0
    res = run(tmp_path, "--resume", "-o", "construct.candidates=[ORIG, DW3]")
    assert res.exit_code == 2
    assert "construct.candidates" in res.stderr and "cannot change on resume" in res.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_out_root_is_reported_up_front(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    res = run(ro)
    assert res.exit_code == 2 and "cannot be written" in res.stderr


def test_out_root_that_is_a_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    res = run(f)
    assert res.exit_code == 2 and "is a file" in res.stderr


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "arch_best.yaml"
    target.write_text(yaml.safe_dump({"arch": {"a": 1}}))

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write(target, "arch: {a: 2}\n")
    assert yaml.safe_load(target.read_text()) == {"arch": {"a": 1}}  # the old file stands whole


def test_reader_folder_reads_the_checkpoint_and_writes_nothing_there(tmp_path):
    # a data-parallel rank other than 0: rank 0's files are read, never written or cleared
    ExperimentFolder(tmp_path).save_checkpoint({"version": 2, "x": torch.ones(2)}, {"stage": 0})
    before = sorted(p.name for p in tmp_path.iterdir())
    reader = ReaderFolder(tmp_path)
    reader.check()
    reader.append_json("history.jsonl", {"a": 1})
    reader.write_yaml("arch_best.yaml", {"arch": {}})
    reader.save_checkpoint({"version": 2, "x": torch.zeros(2)}, {"stage": 1})
    reader.clear()
    reader.path("subnet.pt").write_bytes(b"scratch")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert torch.equal(reader.load_checkpoint()["x"], torch.ones(2))
    assert reader.checkpoint_time() is not None and not reader.path("subnet.pt").is_relative_to(tmp_path)
