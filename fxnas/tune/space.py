"""The search space of a tuning run: each key of the ``space:`` section is a param (a config key path such as
``trainer.lr``, or a command's argument name) with its domain.

Forms of a param's domain::

    trainer.lr: {low: 1.0e-4, high: 0.5, log: true}    # a float in [low, high] (log-uniform with log)
    trainer.max_steps_per_epoch: {low: 2, high: 8, integer: true}
    trainer.criteria: [CrossEntropy, LabelSmoothing]   # a list: one of these values
    data.batch_size: {choices: [16, 32, 64]}

Example::

    >>> from fxnas.tune.space import tune_space
    >>> space = tune_space({"lr": {"low": 0.001, "high": 0.1, "log": True}, "depth": [2, 3, 4]})
    >>> space["lr"], space["depth"].choices
    (Numerical('lr', [0.001, 0.1]), [2, 3, 4])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..space import Categorical, Numerical, Param, SearchSpace

_NUMERICAL_KEYS = ("low", "high", "log", "integer", "default")


def _number(where: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}.{key} must be a number, got {v!r}")
    return v


def tune_param(name: str, spec: Any, where: str = "space") -> Param:
    """The param ``name`` with the domain ``spec`` (a list of choices, {choices: [...]} or {low, high, ...})."""
    at = f"{where}.{name}"
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{at} must be a list of choices or a mapping {{low, high[, log, integer]}} / "
                          f"{{choices: [...]}}, got {spec!r}")
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices", "default"})
        if extra:
            raise ConfigError(f"{at}: a categorical param takes choices (and default), not {extra[0]!r}")
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            raise ConfigError(f"{at}.choices must be a non-empty list, got {spec['choices']!r}")
        return Categorical(name, spec["choices"], spec.get("default"))
    unknown = sorted(set(spec) - set(_NUMERICAL_KEYS))
    if unknown:
        raise ConfigError(f"{at} has no key {unknown[0]!r}; a numerical param takes {', '.join(_NUMERICAL_KEYS)} "
                          f"(or give choices: [...])")
    for req in ("low", "high"):
        if req not in spec:
            raise ConfigError(f"{at} needs {req!r} (e.g. {{low: 0.001, high: 0.1, log: true}})")
    low, high = _number(at, "low", spec["low"]), _number(at, "high", spec["high"])
    for flag in ("log", "integer"):
        if not isinstance(spec.get(flag, False), bool):
            raise ConfigError(f"{at}.{flag} must be true or false, got {spec[flag]!r}")
    if spec.get("log") and low <= 0:
        raise ConfigError(f"{at}: a log-scaled param needs low > 0, got {low}")
    integer = bool(spec.get("integer", False))
    return Numerical(name, low, high, integer=integer, log=bool(spec.get("log", False)), default=spec.get("default"))


def tune_space(spec: Mapping[str, Any], where: str = "space") -> SearchSpace:
    """A SearchSpace with one param per key of ``spec`` (see the module docstring)."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"{where} must map each tuned key to its domain, e.g. {where}: {{trainer.lr: "
                          f"{{low: 0.001, high: 0.1, log: true}}}}")
    space = SearchSpace()
    for name, domain in spec.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: each key names a param, got {name!r}")
        space.add(tune_param(name, domain, where))
    return space


def midpoint(p: Param) -> Any:
    """A representative value of ``p`` (checks that a target accepts the param before any trial runs)."""
    if isinstance(p, Categorical):
        return p.choices[0]
    assert isinstance(p, Numerical)
    if p.log:
        return p.validate((p.low * p.high) ** 0.5)
    return p.validate((p.low + p.high) / 2)
