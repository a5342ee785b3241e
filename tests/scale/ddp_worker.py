"""One rank of the data-parallel search test: run a config under torchrun, dump this rank's final state.

Usage (by tests/scale/test_ddp.py): ``torchrun ... ddp_worker.py CONFIG.yaml DUMP_DIR [--resume]``. Each rank
saves its alphas, its derived and best arch, and a digest of its weights to ``DUMP_DIR/rank<r>.pt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from fxnas.config import build_experiment, load_config


def main() -> None:
    config, dump = sys.argv[1], Path(sys.argv[2])
    exp = build_experiment(load_config(config), progress=False)
    summary = exp.run(resume="--resume" in sys.argv[3:], overwrite="--resume" not in sys.argv[3:])
    assert exp.space is not None and exp.model is not None and exp.optimizer is not None
    state = {"rank": exp.distributed.rank, "world": exp.distributed.world_size,
             "alphas": {n: p.value.detach().cpu().clone() for n, p in exp.space.tensors().items()},
             "derived": exp.optimizer.best(), "best": summary["arch"],
             "weights": {k: v.detach().cpu().clone() for k, v in exp.model.state_dict().items()},
             "history": [r.to_dict() for r in exp.history],
             "steps": exp.trainer.steps_for(exp.data.train) if exp.trainer and exp.data else None}
    dump.mkdir(parents=True, exist_ok=True)
    torch.save(state, dump / f"rank{exp.distributed.rank}.pt")
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
