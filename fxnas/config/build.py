"""Building an experiment from a validated config: every component through its registry's one build path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console
    from torch import nn

    from ..experiment import Experiment
    from ..space import SearchSpace
    from ..train.datasets import DataBundle


def data_inject(data: DataBundle | None) -> dict[str, Any]:
    """What a model builder may take from the data: classes, input shape and channels."""
    if data is None:
        return {}
    return {"num_classes": data.num_classes, "input_shape": tuple(data.input_shape),
            "in_channels": int(data.input_shape[1])}


def build_model(model_cfg: Mapping[str, Any], construct: Mapping[str, Any] | None, data: Any,
                elastic: Mapping[str, Any] | None = None) -> tuple[nn.Module | None, SearchSpace | None]:
    """(supernet, space): the model built (``weights`` loaded into it) and, unless it is a space already,
    searchified by ``construct``, then made elastic by ``elastic`` (both optional, one for a plain model)."""
    from ..api import build_supernet
    from ..options import call_with, check_options
    from ..space import SearchSpace
    from ..spaces.registry import model_builder
    from ..supernet import space_of

    fn = model_builder(model_cfg["type"])
    check_options("model", model_cfg["type"], fn, model_cfg["options"], given=tuple(data_inject(data)))
    obj = call_with(fn, model_cfg["options"], data_inject(data))
    if model_cfg.get("weights") is not None:
        if isinstance(obj, SearchSpace):
            raise ConfigError(f"model.weights: model {model_cfg['type']!r} is a search space without weights")
        from ..modelfile import load_weights

        load_weights(obj, model_cfg["weights"])  # before construct: ORIG candidates copy the loaded weights
    if isinstance(obj, SearchSpace):
        if elastic is not None:
            raise ConfigError(f"model {model_cfg['type']!r} is a bare search space (no network to make elastic); "
                              f"remove the elastic section")
        return None, obj
    try:
        space = space_of(obj)
    except Exception:
        space = None
    if space is not None:
        if construct is not None:
            raise ConfigError(f"model {model_cfg['type']!r} is a search space already; remove the construct section")
        net = obj
    elif construct is None and elastic is None:
        raise ConfigError(f"model {model_cfg['type']!r} has no search space; add a construct section "
                          f"(pattern, candidates, mixed_op) or an elastic section (width, kernel, depth)")
    elif data is None:
        raise ConfigError(f"{'construct' if construct is not None else 'elastic'} needs data (its input shape "
                          f"traces the model)")
    elif construct is not None:
        net = build_supernet(obj, construct["pattern"], construct["candidates"], data.example_input(),
                             construct["mixed_op"], construct["mixed_op_args"], construct["share"],
                             construct["check"])
    else:
        net = obj
    if elastic is not None:
        from ..elastic.config import apply_elastic

        if data is None:
            raise ConfigError("elastic needs data (its input shape traces the model)")
        net = apply_elastic(net, data.example_input(), elastic)
    return net, space_of(net)


def _epochs_note(cfg: Mapping[str, Any]) -> str | None:
    """A note when ``trainer.epochs`` is set but every estimator sets its own epochs (so it has no effect)."""
    if "epochs" not in cfg["trainer"]["options"]:
        return None
    own = [e for e in cfg["estim"] if "epochs" in e["options"]]
    if own and len(own) == len(cfg["estim"]):
        where = ", ".join(f"estim.{i}.epochs={e['options']['epochs']}" for i, e in enumerate(cfg["estim"]))
        return (f"note: trainer.epochs={cfg['trainer']['options']['epochs']} has no effect: every estimator "
                f"sets its own ({where}); override those instead")
    return None


def build_experiment(cfg: Mapping[str, Any], console: Console | None = None,
                     progress: bool | None = None) -> Experiment:
    """Every component of a validated config, owned by a new Experiment (seeded before anything is built)."""
    import torch

    from ..distributed import from_env
    from ..estim.base import ESTIMATORS
    from ..experiment import Experiment
    from ..optim.base import OPTIMIZERS
    from ..rng import seed_everything, set_threads
    from ..train.datasets import DATASETS
    from ..train.trainer import TRAINERS

    if cfg.get("threads") is not None:
        set_threads(int(cfg["threads"]))  # before the data: even its normalisation mean is thread-split
    seed = int(cfg["seed"])
    seed_everything(seed)
    device = cfg["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    distributed = from_env(cfg.get("distributed"), device)  # started by torchrun: join its process group
    device = distributed.device(device)
    data = None if cfg["data"] is None else DATASETS.build(cfg["data"], where="data", inject={"seed": seed})
    model, space = build_model(cfg["model"], cfg["construct"], data, cfg.get("elastic"))
    trainer = TRAINERS.build(cfg["trainer"], where="trainer", inject={"device": device})
    # default objective: the trainer's metric; without data (table lookups) each result's first metric
    objectives = cfg["objectives"] or [trainer.metric if data is not None else None]
    inject: dict[str, Any] = {"space": space, "seed": seed, "constraints": cfg["constraints"],
                              "objectives": objectives, "out_dir": str(Path(cfg["out_root"]) / cfg["name"])}
    first = objectives[0]
    if isinstance(first, str) and ":" not in first:
        inject["metric"] = first
    if space is None:
        raise ConfigError(f"model {cfg['model']['type']!r} gave no search space to optimize")
    optimizer = OPTIMIZERS.build(cfg["optim"], where="optim", inject=inject)
    estimators = [ESTIMATORS.build(e, where=f"estim.{i}") for i, e in enumerate(cfg["estim"])]
    exp = Experiment(model, space, data, trainer, optimizer, estimators, name=cfg["name"],
                     out_root=cfg["out_root"], seed=seed, objectives=objectives, constraints=cfg["constraints"],
                     device=device, export=cfg["export"], parallel=cfg["parallel"], config=cfg, console=console,
                     progress=cfg["progress"] if progress is None else progress, distributed=distributed)
    note = _epochs_note(cfg)
    if note:
        exp.display.print(note, style="yellow")
    return exp
