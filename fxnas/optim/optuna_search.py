"""Optuna: an optimizer backed by an Optuna study (TPE, NSGA-II or random sampling; pruning of bad trials).

Each proposal is a trial the study asks for, with the space's params as its distributions; each Result is
told back (a failed one as FAIL, a pruned one as PRUNED). The study lives in a storage: in memory when the
optimizer is built without a run folder (or with ``storage: memory``), ``<run folder>/optuna.db`` (SQLite) by
default when it has one, or any URL Optuna's RDB storage takes (``postgresql://user@host:5432/db``), where
workers on many machines share one study. A run's own SQLite file starts empty unless the run is resumed; a
named storage is always joined. Its ``state_dict`` holds the study's trials as plain data, so a resumed run
continues exactly even when the storage was in memory.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ..compat import optuna_trial_id
from ..errors import ConfigError
from ..objectives import Objective, ObjectiveLike, objective_values, parse_objective
from ..options import check_options
from ..space import Categorical, Numerical, Param, SearchSpace
from .base import OPTIMIZERS, Result, TrialPruner
from .discrete import Arch, DiscreteOptimizer

SAMPLERS = ("TPE", "NSGAII", "Random")
PRUNERS = ("none", "Median", "Percentile", "SuccessiveHalving", "Hyperband")
_PLAIN = (str, int, float, bool, type(None))


def _sampler_class(name: str) -> Any:
    import optuna

    return {"TPE": optuna.samplers.TPESampler, "NSGAII": optuna.samplers.NSGAIISampler,
            "Random": optuna.samplers.RandomSampler}[name]


def _pruner_class(name: str) -> Any:
    import optuna

    return {"none": optuna.pruners.NopPruner, "Median": optuna.pruners.MedianPruner,
            "Percentile": optuna.pruners.PercentilePruner,
            "SuccessiveHalving": optuna.pruners.SuccessiveHalvingPruner,
            "Hyperband": optuna.pruners.HyperbandPruner}[name]


def build_pruner(name: str, options: Mapping[str, Any]) -> Any:
    """The Optuna pruner ``name`` with ``options`` (checked against its signature)."""
    return _pruner_class(name)(**options)


def open_storage(url: str | None, attempts: int = 5) -> Any:
    """An Optuna storage for ``url`` (None: in memory); SQLite waits on a busy file instead of failing.

    Workers that start together on an empty database race to create Optuna's tables; the losers retry.
    """
    import time

    import optuna

    if url is None:
        return optuna.storages.InMemoryStorage()
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except ImportError as exc:  # e.g. postgresql:// without a driver installed
            raise ConfigError(f"optim.storage {url!r} needs a database driver: {exc}") from None
        except Exception as exc:  # sqlalchemy's connection, URL and table-creation errors
            if attempt + 1 < attempts and "IntegrityError" in type(exc).__name__ + str(exc):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise ConfigError(f"optim.storage {url!r} cannot be opened ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    raise AssertionError("unreachable")


def distribution_of(p: Param) -> Any:
    """The Optuna distribution of a space param (categorical choices that are not plain values by index)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(p, Categorical):
        plain = all(isinstance(c, _PLAIN) for c in p.choices)
        return CategoricalDistribution(list(p.choices) if plain else list(range(len(p.choices))))
    if isinstance(p, Numerical):
        if p.log and p.low <= 0:
            raise ConfigError(f"param {p.name!r} is log-scaled but its low bound {p.low} is not > 0")
        if p.integer:
            return IntDistribution(int(p.low), int(p.high), log=p.log)
        return FloatDistribution(float(p.low), float(p.high), log=p.log)
    raise ConfigError(f"Optuna cannot search param {p!r} (only categorical and numerical params)")


class OptunaPruner(TrialPruner):
    """Reports a running trial's intermediate objective value to its study and asks the study's pruner.

    Holds the storage URL, study name, trial id, pruner and objective (plain data), so it travels to worker
    processes; with an in-memory storage it holds the study itself and works in this process only.
    """

    def __init__(self, storage: str | None, study_name: str, trial_id: int, pruner: str,
                 pruner_options: Mapping[str, Any], objective: Objective, study: Any = None) -> None:
        self.storage, self.study_name, self.trial_id = storage, study_name, int(trial_id)
        self.pruner, self.pruner_options, self.objective = pruner, dict(pruner_options), objective
        self._study = study if storage is None else None

    def __getstate__(self) -> dict[str, Any]:
        if self.storage is None:
            raise ConfigError("pruning in another process needs a shared study storage: set optim.storage to a "
                              "sqlite:/// or postgresql:// URL, or run trials with parallel.backend local/thread")
        return {**self.__dict__, "_study": None}

    def _trial(self) -> Any:
        import optuna

        if self._study is None:
            self._study = optuna.load_study(study_name=self.study_name, storage=open_storage(self.storage),
                                            pruner=build_pruner(self.pruner, self.pruner_options))
        return optuna.Trial(self._study, self.trial_id)

    def report(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Record the objective's value at ``step`` (skipped when the metrics lack it); True: prune."""
        try:
            value = self.objective.value(metrics)
        except ConfigError:
            return False
        if not math.isfinite(value):
            return True  # a diverging trial is not worth finishing
        trial = self._trial()
        trial.report(value, int(step))
        return bool(trial.should_prune())


@OPTIMIZERS.register("Optuna")
class Optuna(DiscreteOptimizer):
    """An Optuna study: ``sampler`` TPE (default), NSGAII (several objectives) or Random; ``pruner`` stops bad
    trials early (Median, Percentile, SuccessiveHalving, Hyperband; ``none``).

    One objective is told as the score (constraint penalty included); several (``objectives``) make a
    multi-objective study of their oriented values. ``storage``: an RDB URL shared by workers (default:
    ``optuna.db`` in the run folder, in memory without one; ``memory``: in memory); ``study``: its name
    (default: the run folder's name). ``sampler_options`` / ``pruner_options`` go to the Optuna classes
    (e.g. ``n_startup_trials``, ``population_size``). Workers sharing a study should each get their own ``seed``.
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, sampler: Literal["TPE", "NSGAII", "Random"] = "TPE",
                 sampler_options: dict[str, Any] | None = None,
                 pruner: Literal["none", "Median", "Percentile", "SuccessiveHalving", "Hyperband"] = "none",
                 pruner_options: dict[str, Any] | None = None, storage: str | None = None,
                 study: str | None = None, objectives: Sequence[ObjectiveLike] = (), out_dir: str | None = None,
                 max_asks: int = 20, **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        self.sampler_name, self.pruner_name = sampler, pruner
        self.sampler_options, self.pruner_options = dict(sampler_options or {}), dict(pruner_options or {})
        check_options("optim.sampler_options", sampler, _sampler_class(sampler), self.sampler_options,
                      internal=("seed",))
        check_options("optim.pruner_options", pruner, _pruner_class(pruner), self.pruner_options)
        objs = [parse_objective(o) for o in objectives]
        self.objectives: list[Objective] = objs if len(objs) > 1 else [self.objective]
        self.own_file = storage is None and out_dir is not None
        if storage == "memory":
            self.storage_url: str | None = None
        else:
            self.storage_url = storage if storage is not None else (
                f"sqlite:///{Path(out_dir).resolve() / 'optuna.db'}" if out_dir is not None else None)
        self.study_name = study or (Path(out_dir).name if out_dir is not None else "fxnas")
        self.max_asks = int(max_asks)
        self.dists = {k: distribution_of(p) for k, p in self.params.items()}
        # categoricals whose choices are not plain values: the trial holds their index
        self.by_index = {k for k, p in self.params.items()
                         if isinstance(p, Categorical) and self.dists[k].choices != tuple(p.choices)}
        self.n_asked = 0
        self.pending: dict[int, Arch] = {}  # trial number -> arch, asked and not told yet
        self._study: Any = None

    # --- the study ----------------------------------------------------------------------------------
    @property
    def multi(self) -> bool:
        """True when the study has several objectives."""
        return len(self.objectives) > 1

    @property
    def study(self) -> Any:
        """The Optuna study (opened on first use: a fresh run empties its own SQLite file)."""
        if self._study is None:
            self._study = self._open(fresh=True)
        return self._study

    def _open(self, fresh: bool) -> Any:
        import optuna

        storage = open_storage(self.storage_url)
        if fresh and self.own_file and self.study_name in optuna.study.get_all_study_names(storage):
            optuna.delete_study(study_name=self.study_name, storage=storage)
        study = optuna.create_study(storage=storage, study_name=self.study_name, load_if_exists=True,
                                    directions=["maximize"] * len(self.objectives), sampler=self._sampler(0),
                                    pruner=build_pruner(self.pruner_name, self.pruner_options))
        if len(study.directions) != len(self.objectives):
            raise ConfigError(f"study {self.study_name!r} in {self.storage_url} has {len(study.directions)} "
                              f"objectives, this search {len(self.objectives)}; name another optim.study")
        return study

    def _sampler(self, n: int) -> Any:
        # one sampler per ask, seeded by (seed, ask count): a restored optimizer asks exactly what the original would
        seed = None if self.seed is None else random.Random(f"{self.seed}:{n}").randrange(2 ** 31)
        return _sampler_class(self.sampler_name)(seed=seed, **self.sampler_options)

    def _arch(self, params: Mapping[str, Any]) -> Arch:
        return {k: (p.choices[params[k]] if k in self.by_index else params[k]) for k, p in self.params.items()}

    def _params(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        return {k: (p.choices.index(arch[k]) if k in self.by_index else arch[k]) for k, p in self.params.items()}

    # --- proposing ----------------------------------------------------------------------------------
    def _ask(self) -> Arch | None:
        import optuna

        study = self.study
        for _ in range(self.max_asks):
            if self.exhausted():
                return None
            study.sampler = self._sampler(self.n_asked)
            self.n_asked += 1
            trial = study.ask(self.dists)
            arch = self._arch(trial.params)
            if self.allow_repeat or not self.seen(arch):
                self.pending[trial.number] = arch
                return self._take(arch)
            # a repeat: tell it the earlier result (Optuna's advice for repeated samples) and ask again
            earlier = next((r for r in reversed(self.history) if self._same(r.arch, arch)), None)
            if earlier is None or earlier.failed or earlier.info.get("pruned"):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, self._values(earlier))
        arch = self.fresh(self.random_arch)  # the sampler keeps repeating itself: an unseen random arch
        if arch is None:
            return None
        study.enqueue_trial(self._params(arch))
        trial = study.ask(self.dists)
        self.pending[trial.number] = arch
        return arch

    def _same(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        return all(a.get(k) == b.get(k) for k in self.params)

    def next(self, n: int = 1) -> list[Arch]:
        """Up to ``n`` archs, one asked trial each (never an arch proposed before, unless ``allow_repeat``)."""
        out = []
        for _ in range(max(0, int(n))):
            arch = self._ask()
            if arch is None:
                break
            out.append(arch)
        return out

    def pruner(self, arch: Mapping[str, Any]) -> TrialPruner | None:
        """An OptunaPruner for the pending trial of ``arch`` (None when not pruning or multi-objective)."""
        if self.pruner_name == "none" or self.multi:
            return None
        number = next((n for n, a in self.pending.items() if self._same(a, arch)), None)
        if number is None:
            return None
        trial_id = optuna_trial_id(self.study.trials[number])
        return OptunaPruner(self.storage_url, self.study_name, trial_id, self.pruner_name, self.pruner_options,
                            self.objective, self.study)

    # --- learning -----------------------------------------------------------------------------------
    def _values(self, r: Result) -> list[float]:
        return objective_values(r.metrics, self.objectives) if self.multi else [self.score(r)]

    def step(self, results: list[Result]) -> None:
        """Record the results and tell each to its trial (a result no trial asked for is added as one)."""
        import optuna

        super().step(results)
        State = optuna.trial.TrialState
        for r in results:
            number = next((n for n, a in self.pending.items() if self._same(a, r.arch)), None)
            values = None if r.failed else self._values(r)
            if values is not None and not all(math.isfinite(v) for v in values):
                values = None
            state = State.PRUNED if r.info.get("pruned") else State.FAIL if values is None else State.COMPLETE
            if number is not None:
                del self.pending[number]
                self.study.tell(number, values if state == State.COMPLETE else None, state=state,
                                skip_if_finished=True)
            elif all(k in r.arch for k in self.params):
                self.study.add_trial(optuna.trial.create_trial(
                    state=state, params=self._params(r.arch), distributions=self.dists,
                    values=values if state == State.COMPLETE else None))

    # --- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Base state plus the study's trials (plain data), the pending trials and the ask count."""
        from optuna.distributions import distribution_to_json

        trials = [{"state": t.state.name, "values": t.values, "params": dict(t.params),
                   "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
                   "user_attrs": dict(t.user_attrs), "system_attrs": dict(t.system_attrs),
                   "intermediate": {int(k): float(v) for k, v in t.intermediate_values.items()}}
                  for t in self.study.trials]
        return {**super().state_dict(), "trials": trials, "n_asked": self.n_asked,
                "pending": [[n, dict(a)] for n, a in sorted(self.pending.items())]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore; an empty storage (in memory) gets the saved trials back, a persistent one has them."""
        import optuna
        from optuna.distributions import json_to_distribution

        super().load_state_dict(state)
        self.n_asked = int(state.get("n_asked", 0))
        self.pending = {int(n): dict(a) for n, a in state.get("pending", [])}
        self._study = self._open(fresh=False)
        if not self._study.trials:
            for t in state.get("trials", []):
                st = optuna.trial.TrialState[t["state"]]
                self._study.add_trial(optuna.trial.create_trial(
                    state=st, values=t["values"] if st == optuna.trial.TrialState.COMPLETE else None,
                    params=dict(t["params"]),
                    distributions={k: json_to_distribution(d) for k, d in t["distributions"].items()},
                    user_attrs=dict(t["user_attrs"]), system_attrs=dict(t["system_attrs"]),
                    intermediate_values={int(k): float(v) for k, v in t["intermediate"].items()}))
