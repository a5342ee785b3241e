"""Steps that search and train: Search (an experiment), Tune (a tune config), Retrain (an arch from scratch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..options import FilePath
from .step import PIPELINE_STEPS, Step, StepRun


def _floats(d: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float))}


@PIPELINE_STEPS.register("Search")
class Search(Step):
    """Run an experiment config (a killed run resumes from its checkpoint when the step runs again).

    Outputs: ``arch`` (the best), ``metrics``, ``test_metrics``, ``arch_file`` (arch_best.yaml), ``subnet``
    (the exported subnet.pt, or null) and ``out_dir``.
    """

    outputs = ("arch", "metrics", "test_metrics", "arch_file", "subnet", "out_dir")

    def __init__(self, config: FilePath, overrides: Sequence[str] = ()) -> None:
        from ..tune.experiment_target import experiment_ref

        self.config, self.overrides = experiment_ref(str(config)), list(overrides)

    def run(self, ctx: StepRun) -> dict[str, Any]:
        """Search in ``<step folder>/search``."""
        from ..config import build_experiment, load_config
        from ..progress import make_console

        cfg = load_config(self.config, self.overrides, name="search", out_root=str(ctx.workdir))
        exp = build_experiment(cfg, console=make_console(quiet=True), progress=False)
        summary = exp.run(resume=True)
        subnet = exp.out_dir / "subnet.pt"
        return {"arch": summary["arch"], "metrics": _floats(summary["metrics"]),
                "test_metrics": _floats(summary.get("test_metrics", {})),
                "arch_file": str((exp.out_dir / "arch_best.yaml").resolve()),
                "subnet": str(subnet.resolve()) if subnet.exists() else None, "out_dir": str(exp.out_dir.resolve())}


@PIPELINE_STEPS.register("Tune")
class Tune(Step):
    """Run a tune config (``fxnas tune``; a killed run resumes). Outputs: ``params``, ``metrics``, ``out_dir``."""

    outputs = ("params", "metrics", "out_dir")

    def __init__(self, config: FilePath, overrides: Sequence[str] = ()) -> None:
        self.config, self.overrides = str(config), list(overrides)

    def run(self, ctx: StepRun) -> dict[str, Any]:
        """Tune in ``<step folder>/tune``."""
        from ..progress import make_console
        from ..tune import build_tuner, load_tune_config

        cfg = load_tune_config(self.config, self.overrides, name="tune", out_root=str(ctx.workdir))
        summary = build_tuner(cfg, console=make_console(quiet=True), progress=False).run(resume=True)
        return {"params": summary["params"], "metrics": _floats(summary["metrics"]),
                "out_dir": str(ctx.workdir.resolve() / "tune")}


@PIPELINE_STEPS.register("Retrain")
class Retrain(Step):
    """Train ``arch`` from scratch (fresh weights) with an experiment config's model, data and trainer.

    ``arch``: a mapping or an arch file (Search's ``arch`` or ``arch_file``); ``epochs``: default the trainer's.
    The subnet is materialised (plain torch ops), evaluated on the test split (valid without one) and saved.
    Outputs: ``model`` (model.pt), ``metrics``, ``input_shape``, ``arch``.
    """

    outputs = ("model", "metrics", "input_shape", "arch")

    def __init__(self, config: FilePath, arch: dict[str, Any] | FilePath, epochs: int | None = None,
                 overrides: Sequence[str] = (), seed: int | None = None) -> None:
        from ..tune.experiment_target import experiment_ref

        if epochs is not None and epochs < 0:
            raise ConfigError(f"Retrain: epochs must be >= 0, got {epochs}")
        self.config, self.arch, self.epochs = experiment_ref(str(config)), arch, epochs
        self.overrides, self.seed = list(overrides), seed

    def run(self, ctx: StepRun) -> dict[str, Any]:
        """Build, train, evaluate and save the subnet."""
        import torch

        from ..arch import read_arch
        from ..config import build_model, load_config
        from ..estim.subnet import fit_subnet, single_path
        from ..passes.materialize import materialize
        from ..rng import seed_everything
        from ..train.datasets import DATASETS
        from ..train.trainer import TRAINERS

        cfg = load_config(self.config, self.overrides)
        seed = int(cfg["seed"] if self.seed is None else self.seed)
        seed_everything(seed)
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg["threads"]))
        if cfg["data"] is None:
            raise ConfigError(f"Retrain needs data: {self.config} has no data section")
        data = DATASETS.build(cfg["data"], where="data", inject={"seed": seed})
        model, space = build_model(cfg["model"], cfg["construct"], data)
        if model is None or space is None:
            raise ConfigError(f"Retrain needs a model to train: {self.config} gives a bare search space")
        arch = space.validate(read_arch(self.arch) if isinstance(self.arch, str) else dict(self.arch), complete=True)
        trainer = TRAINERS.build(cfg["trainer"], where="trainer", inject={"device": "cpu"})
        split = "test" if data.test is not None else "valid"
        metrics, net = fit_subnet(model, arch, data, trainer, self.epochs, seed, from_scratch=True, eval_split=split)
        # a single-path supernet gives back a trained supernet copy; other mixed ops a materialised subnet already
        subnet = materialize(net, arch) if single_path(model) else net
        path = ctx.workdir / "model.pt"
        torch.save(subnet.eval(), path)
        return {"model": str(path.resolve()), "metrics": _floats(metrics),
                "input_shape": list(data.example_input().shape), "arch": arch}
