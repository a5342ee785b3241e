"""Hypothesis profiles of the property tests: ``ci`` (a few dozen examples, the default suite) and ``slow``
(a few hundred, the slow suite). No example database: a run's result must not depend on earlier runs."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, database=None, derandomize=True, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=20, **_COMMON)
settings.register_profile("slow", max_examples=300, **_COMMON)


def examples(profile: str, scale: float = 1.0) -> settings:
    """The settings of ``profile`` with ``scale`` times its examples (ONNX export is slow: fewer)."""
    base = settings.get_profile(profile)
    return settings(base, max_examples=max(1, int(base.max_examples * scale)))
