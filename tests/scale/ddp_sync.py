"""One rank of the gradient-reduction test: ``torchrun ... ddp_sync.py OUT_DIR``; saves what it saw to OUT_DIR."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from fxnas.distributed import from_env


def main() -> None:
    d = from_env({}, "cpu")
    r = d.rank
    used, shared, unused = (nn.Parameter(torch.zeros(3)) for _ in range(3))
    used.grad = torch.full((3,), 4.0) if r == 0 else None  # a path only rank 0 ran
    shared.grad = torch.full((3,), float(r + 1))
    buffer = torch.full((2,), float(10 * r))
    ok = d.sync_step([used, shared, unused], [buffer], finite=True)
    out = {"ok": ok, "used": used.grad.clone(), "shared": shared.grad.clone(), "unused": unused.grad,
           "buffer": buffer.clone()}
    shared.grad = torch.ones(3)
    out["ok_nan"] = d.sync_step([shared], [], finite=r == 0)  # rank 1's loss was not finite
    out["shared_nan"] = shared.grad
    out["avg"] = d.average([torch.tensor([float(r)]), torch.full((2, 2), 2.0 * r)])
    out["obj"] = d.broadcast({"rank": r})
    torch.save(out, Path(sys.argv[1]) / f"rank{r}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
