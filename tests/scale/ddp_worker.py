"""One rank of the data-parallel search test: run a config under torchrun, dump this rank's final state.

Usage (by tests/scale/test_ddp.py): ``torchrun ... ddp_worker.py CONFIG.yaml DUMP_DIR [--resume] [--stop-after K]``.
Each rank saves its alphas, derived and best arch, weights, history and train shard to ``DUMP_DIR/rank<r>.pt``.
``--stop-after K`` ends every rank right after the K-th checkpoint (as a killed run would stop), dumping nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist

from fxnas.config import build_experiment, load_config


class Stop(Exception):
    """Raised after the K-th checkpoint."""


def stopping(checkpoint: Callable[[], Path], k: int) -> Callable[[], Path]:
    """``checkpoint`` that raises Stop once it has run ``k`` times (every rank checkpoints at the same steps)."""
    calls = [0]

    def wrapped() -> Path:
        out = checkpoint()
        calls[0] += 1
        if calls[0] >= k:
            raise Stop
        return out

    return wrapped


def main() -> None:
    config, dump, flags = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    exp = build_experiment(load_config(config), progress=False)
    if "--stop-after" in flags:
        exp.checkpoint = stopping(exp.checkpoint, int(flags[flags.index("--stop-after") + 1]))  # type: ignore[method-assign]
    try:
        summary = exp.run(resume="--resume" in flags, overwrite="--resume" not in flags)
    except Stop:
        dist.destroy_process_group()
        return
    assert exp.space is not None and exp.model is not None and exp.optimizer is not None
    state = {"rank": exp.distributed.rank, "world": exp.distributed.world_size,
             "alphas": {n: p.value.detach().cpu().clone() for n, p in exp.space.tensors().items()},
             "derived": exp.optimizer.best(), "best": summary["arch"],
             "weights": {k: v.detach().cpu().clone() for k, v in exp.model.state_dict().items()},
             "history": [r.to_dict() for r in exp.history],
             "steps": exp.trainer.steps_for(exp.data.train) if exp.trainer and exp.data else None,
             "shard": exp.data.train.sampler.order() if exp.data else None}
    dump.mkdir(parents=True, exist_ok=True)
    torch.save(state, dump / f"rank{exp.distributed.rank}.pt")
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
