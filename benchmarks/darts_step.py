"""The peers' DARTS step: fxnas's DARTS optimizer + SuperNet estimator against a hand-written PyTorch loop.

Run: python benchmarks/darts_step.py [--batch 64] [--size 32] [--rounds 10] [--check-steps 5] [--no-compile]
The space is the 6-layer, 4-candidate supernet of ``_darts6`` (stem 16; 16/16/32/32/64/64, stride 2 at the
3rd and 5th layer; conv3x3, conv5x5, sepconv3x3, inverted residual e3k3). One step is first-order DARTS:
Adam on the alphas along d L_valid / d alpha, then an SGD step on the weights on the train batch (momentum
0.9, weight decay 3e-4, gradient clipping at 5, cosine schedule), in the estimator's order (no arch step
before the very first weight step). fxnas steps through ``SuperNet.before_step`` / ``weight_step`` /
``after_step``, i.e. ``DARTS.step_arch`` and ``Trainer.train_step``; the hand-written loop does the same math
with torch calls only. Both start from the same weights and alphas, and after ``--check-steps`` steps their
alphas must agree (asserted). Targets: fxnas eager <= 1.02x the hand-written loop; the fxnas supernet under
``torch.compile`` <= 0.8x the hand-written eager loop.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from _bench import alternate, fmt_ratio, machine, ms, ratio, single_thread
from _darts6 import HandSupernet, copy_into, fxnas_supernet, layer_ops

from fxnas.estim.supernet import SuperNet
from fxnas.optim.gradient import DARTS
from fxnas.train.trainer import Trainer

Batch = tuple[torch.Tensor, torch.Tensor]
SGD = {"lr": 0.025, "momentum": 0.9, "weight_decay": 3e-4}
ADAM = {"lr": 3e-4, "betas": (0.5, 0.999), "weight_decay": 1e-3, "eps": 1e-8}
CLIP = 5.0


def fxnas_stepper(model: torch.nn.Module, space, total: int, valid: list[Batch]) -> Callable[[Batch], None]:
    """One DARTS iteration driven by fxnas's SuperNet estimator, DARTS optimizer and Trainer."""
    trainer = Trainer(epochs=1, grad_clip=CLIP, scheduler="cosine", **SGD)
    trainer.configure(model, steps_per_epoch=total)
    ctx = SimpleNamespace(model=model, space=space, trainer=trainer, optimizer=DARTS(space, seed=0),
                          data=SimpleNamespace(valid=valid, arch_split=lambda: valid), seed=0)
    est = SuperNet()

    def step(batch: Batch) -> None:
        est.before_step(ctx, batch)  # type: ignore[arg-type]  # the SearchContext parts the estimator reads
        est.weight_step(ctx, batch)  # type: ignore[arg-type]
        est.step += 1
        est.after_step(ctx, batch)  # type: ignore[arg-type]

    return step


def hand_stepper(hand: HandSupernet, total: int, valid: list[Batch]) -> Callable[[Batch], None]:
    """The same iteration written by hand."""
    wopt = torch.optim.SGD(hand.parameters(), **SGD)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(wopt, T_max=total)
    aopt = torch.optim.Adam(hand.alphas, **ADAM)
    state = {"steps": 0, "valid": 0}

    def step(batch: Batch) -> None:
        if state["steps"] > 0:  # alpha first, then w; the first iteration has no arch step
            xv, yv = valid[state["valid"] % len(valid)]
            state["valid"] += 1
            grads = torch.autograd.grad(F.cross_entropy(hand(xv), yv), hand.alphas)
            for a, g in zip(hand.alphas, grads):
                a.grad = g
            aopt.step()
            for a in hand.alphas:
                a.grad = None
        wopt.zero_grad(set_to_none=True)
        x, y = batch
        F.cross_entropy(hand(x), y).backward()
        torch.nn.utils.clip_grad_norm_(hand.parameters(), CLIP)
        wopt.step()
        sched.step()
        state["steps"] += 1

    return step


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Check that the alphas agree, then print the step-time ratios; returns the medians."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--check-steps", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile figure")
    a = ap.parse_args(argv)
    single_thread()
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(a.batch, 3, a.size, a.size, generator=g), torch.randint(0, 10, (a.batch,), generator=g))
               for _ in range(3)]
    train, valid = batches[0], batches[1:]
    total = a.check_steps + 2 * (2 + a.rounds * a.reps) + 10  # every step the cosine schedule will see
    supernet = fxnas_supernet("SoftmaxSum", seed=0)
    hand = HandSupernet().train()
    copy_into(hand, supernet)
    fx_step, hand_step = fxnas_stepper(supernet, supernet.space, total, valid), hand_stepper(hand, total, valid)
    for _ in range(a.check_steps):
        fx_step(train)
        hand_step(train)
    diff = max((op.alpha - h).abs().max().item() for op, h in zip(layer_ops(supernet), hand.alphas))
    moved = max(h.abs().max().item() for h in hand.alphas)
    assert diff <= 1e-6 * max(1.0, moved), f"alphas differ after {a.check_steps} steps: max |diff| {diff}"
    print(f"DARTS 6-layer x 4 candidates, batch {a.batch} of 3x{a.size}x{a.size}; {machine()}")
    print(f"alphas after {a.check_steps} steps: fxnas vs hand-written max |diff| {diff:.1e} (max |alpha| {moved:.1e})")
    fns: dict[str, Callable[[], None]] = {"hand": lambda: hand_step(train), "fxnas": lambda: fx_step(train)}
    if not a.no_compile:
        compiled_net = fxnas_supernet("SoftmaxSum", seed=0)
        compiled = torch.compile(compiled_net)
        c_step = fxnas_stepper(compiled, compiled_net.space, total, valid)
        t = time.perf_counter()
        for _ in range(2):  # the first weight step and the first arch step compile their graphs
            c_step(train)
        print(f"torch.compile warm-up (2 steps): {time.perf_counter() - t:.1f} s")
        fns["compiled"] = lambda: c_step(train)
    times = alternate(fns, a.rounds, a.reps, warmup=1)
    out = {"fxnas": ratio(times, "fxnas", "hand")[0]}
    print(f"hand-written eager {ms(times['hand']):.0f} ms/step, fxnas eager {ms(times['fxnas']):.0f} ms/step: "
          f"{fmt_ratio(ratio(times, 'fxnas', 'hand'), '<= 1.02x')}")
    if "compiled" in times:
        out["compiled"] = ratio(times, "compiled", "hand")[0]
        print(f"fxnas compiled {ms(times['compiled']):.0f} ms/step vs hand-written eager: "
              f"{fmt_ratio(ratio(times, 'compiled', 'hand'), '<= 0.8x')}")
    return out


if __name__ == "__main__":
    main()
