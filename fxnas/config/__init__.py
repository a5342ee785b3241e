"""Experiment configs: YAML (+ ``-o key.path=value`` overrides) → validated sections → an Experiment.

``load`` reads files and overrides, ``schema`` validates every section through the component registries,
``build`` builds the experiment, ``docs`` generates the component list.
"""

from ..components import registries
from .build import build_experiment, build_model
from .docs import components_markdown, write_components_doc
from .load import CONFIG_DIR, apply_override, load_config, packaged_configs, resolve_config
from .schema import DEFAULTS, validate

__all__ = [
    "CONFIG_DIR", "DEFAULTS", "apply_override", "build_experiment", "build_model", "components_markdown",
    "load_config", "packaged_configs", "registries", "resolve_config", "validate", "write_components_doc",
]
