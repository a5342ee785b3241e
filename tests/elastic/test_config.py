"""A config's elastic section: checked with key paths, applied after construct (or to a plain model)."""

from __future__ import annotations

import pytest
import torch

from fxnas.config import build_experiment, load_config
from fxnas.config.changes import resume_changes
from fxnas.elastic import elastic_params
from fxnas.elastic.config import validate_elastic
from fxnas.errors import ConfigError
from fxnas.supernet import mixed_ops


def base(**changes):
    cfg = {"name": "e", "progress": False, "model": {"type": "tiny_net", "width": 8},
           "data": {"type": "digits", "size": 8, "channels": 3}, "optim": {"type": "Random"},
           "estim": [{"type": "Uniform", "epochs": 0, "budget": 1, "costs": ["macs"]}]}
    cfg.update(changes)
    return cfg


@pytest.mark.parametrize("section, pattern", [
    ({"widht": [0.5, 1.0]}, r"^unknown key 'widht' in elastic; did you mean width\? Valid keys: width, kernel"),
    ({"width": 0.5}, r"^elastic\.width must be list of float \| None, got 0\.5$"),
    ({"width": [0.5, 1]}, r"^elastic\.width \[0\.5, 1\] mixes ratios \(floats\) and channel counts .* 1\.0"),
    ({"width": [0.5, 1.5]}, r"^elastic\.width: 1\.5 is neither a ratio in \(0, 1\] nor a positive channel count$"),
    ({"width": []}, r"^elastic\.width must list at least one value"),
    ({"kernel": [3, 4]}, r"^elastic\.kernel must list positive odd kernel sizes"),
    ({"depth": [-1]}, r"^elastic\.depth lists how many trailing blocks"),
    ({"depth": [0, 1], "kernel_layers": "some"}, r"^elastic\.kernel_layers must be 'depthwise', 'all', got 'some'"),
    ({"depth": [0, 1], "groups": "every"}, r"^elastic\.groups must be all, expansion or a list of layer paths"),
    ({"groups": "all"}, r"^elastic needs at least one of width, kernel, depth"),
    ([0.5, 1.0], r"^elastic must be a mapping of width, kernel"),
])
def test_bad_sections_name_the_key(section, pattern) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(base(elastic=section))


def test_defaults_are_filled_in() -> None:
    assert validate_elastic({"width": [0.5, 1.0]}) == {"width": [0.5, 1.0], "kernel": None, "depth": None,
                                                       "groups": "all", "kernel_layers": "depthwise",
                                                       "divisor": 8, "importance": "l1"}


def test_elastic_after_construct_shares_one_space(tmp_path) -> None:
    """construct makes op choices, elastic adds width/kernel/depth to the same space; a plain model needs only
    the elastic section; the supernet at its largest setting computes what the searchified model does."""
    cfg = load_config(base(construct={"pattern": "conv3x3", "candidates": ["ORIG", "DW3"]},
                           elastic={"width": [0.5, 1.0], "depth": [0, 1], "kernel": [3, 5],
                                    "kernel_layers": "all"}), out_root=str(tmp_path))
    exp = build_experiment(cfg)
    kinds = {p.kind for p in elastic_params(exp.space).values()}
    assert kinds == {"width", "kernel", "depth"} and mixed_ops(exp.model)
    assert set(exp.space.discrete()) > set(elastic_params(exp.space))
    assert exp.model.training  # built in eval mode, handed back in train mode
    summary = exp.run()
    assert "macs" in summary["metrics"]
    plain = build_experiment(load_config(base(elastic={"depth": [0, 1]}), out_root=str(tmp_path)))
    assert set(plain.space.discrete()) == {"depth.res1", "depth.dw"}
    x = torch.randn(2, 3, 8, 8)
    assert plain.model.eval()(x).shape == (2, 10)


def test_errors_found_while_elasticizing_name_the_section(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"^elastic: 'nowhere' produces no channel group"):
        build_experiment(load_config(base(elastic={"width": [0.5, 1.0], "groups": ["nowhere"]})))
    with pytest.raises(ConfigError, match=r"^elastic: nothing of TinyNet became elastic"):
        build_experiment(load_config(base(elastic={"kernel": [7]})))
    with pytest.raises(ConfigError, match="has no search space; add a construct section .* or an elastic section"):
        build_experiment(load_config(base(construct=None, elastic=None)))


def test_a_changed_elastic_section_cannot_resume() -> None:
    saved = {"elastic": {"width": [0.5, 1.0]}, "trainer": {"lr": 0.1}}
    assert "trainer.lr" in resume_changes(saved, {**saved, "trainer": {"lr": 0.2}}, "exp/e")
    with pytest.raises(ConfigError, match=r"elastic\.width\.0 cannot change on resume"):
        resume_changes(saved, {**saved, "elastic": {"width": [0.25, 1.0]}}, "exp/e")
