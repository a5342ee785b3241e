"""What a finished search leaves: the best arch materialised (``subnet.pt`` and its weights alone in
``subnet_state.pt``, BatchNorm recalibrated), its test metrics, and its ONNX file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..rng import preserved_rng

if TYPE_CHECKING:
    from ..experiment import Experiment


def export_best(exp: Experiment) -> dict[str, Any]:
    """Materialise the best arch (subnet.pt, BN recalibrated), evaluate it on the test split, export ONNX."""
    from ..passes.materialize import materialize

    assert exp.model is not None and exp.best is not None
    out: dict[str, Any] = {}
    trained = next((m for m in (e.final_subnet(exp, exp.best.arch) for e in reversed(exp.estimators))
                    if m is not None), None)
    # a subnet an estimator trained standalone (Retrain) is exported as it is; else cut it from the supernet
    net = materialize(exp.model, exp.best.arch) if trained is None else trained  # type: ignore[arg-type]
    steps = int(exp.export.get("bn_recalibrate", 10)) if trained is None else 0
    if steps and exp.data is not None:  # shared weights: the subnet's BN saw other paths' inputs
        from ..train.bn import recalibrate_bn

        exp.data.set_epoch(0)
        with preserved_rng():
            recalibrate_bn(net, exp.data.train, steps, exp.device)
    torch.save(net, exp.path("subnet.pt"))
    # the weights alone as well: fxnas export/profile/report rebuild the subnet from config.yaml and
    # arch_best.yaml and load these with weights_only=True, never unpickling subnet.pt
    torch.save(net.state_dict(), exp.path("subnet_state.pt"))
    out["subnet"] = str(exp.out_dir / "subnet.pt")
    if exp.export.get("test", True) and exp.data is not None and exp.data.test is not None \
            and exp.trainer is not None:
        test = exp.evaluate(net, "test")
        out["test_metrics"] = test
        exp.log(f"best arch on test: {test}")
    if exp.export.get("onnx", False) and exp.data is not None:
        from ..profilers.onnx_export import export_onnx

        x = exp.data.example_input().to(exp.device)
        export_onnx(net.eval(), x, exp.path("subnet.onnx"), simplify=bool(exp.export.get("simplify", True)))
        out["onnx"] = str(exp.out_dir / "subnet.onnx")
    return out
