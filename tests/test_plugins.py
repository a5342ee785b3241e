"""User components from the user's own file reach YAML (``imports:``) and the CLI (``--import``) by name."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from fxnas.candidates import CANDIDATES
from fxnas.cli.main import main
from fxnas.config import build_experiment, load_config
from fxnas.mixed import MIXED_OPS
from fxnas.optim import OPTIMIZERS

PLUGIN = '''
from torch import nn

from fxnas.candidates import CANDIDATES
from fxnas.mixed import MIXED_OPS, MixedOp
from fxnas.optim import OPTIMIZERS
from fxnas.optim.discrete import DiscreteOptimizer

CALLS = {"op": 0}


@CANDIDATES.register("MYCONV")
def my_conv(spec):
    """A 3x3 conv + ReLU of the slot's channels and stride."""
    return nn.Sequential(nn.Conv2d(spec.in_channels, spec.out_channels, 3, spec.stride, 1), nn.ReLU())


@MIXED_OPS.register("Counting")
class Counting(MixedOp):
    """Runs the chosen candidate and counts its calls."""

    def forward(self, *args):
        CALLS["op"] += 1
        return self.forward_chosen(*args)


@OPTIMIZERS.register("FirstThenRandom")
class FirstThenRandom(DiscreteOptimizer):
    """Proposes the all-first-choice arch, then random ones."""

    def next(self, n=1):
        first = {k: p.choices[0] for k, p in self.params.items()}
        return self.propose(n, lambda: first if not self.n_proposed else self.random_arch())
'''


@contextlib.contextmanager
def plugin_file(folder: Path):
    """The plugin written to ``folder``; its registrations undone (and module forgotten) afterwards."""
    path = folder / "my_ops.py"
    path.write_text(PLUGIN)
    before = set(sys.modules)
    with CANDIDATES.scoped(), MIXED_OPS.scoped(), OPTIMIZERS.scoped():
        yield path
    for name in set(sys.modules) - before:
        if name.startswith("fxnas_user_my_ops"):
            del sys.modules[name]


def config(folder: Path) -> Path:
    cfg = {
        "name": "plug", "progress": False, "out_root": str(folder / "exp"),
        "imports": ["my_ops.py"],  # relative to the config file's folder
        "model": {"type": "tiny_net", "width": 4},
        "construct": {"pattern": "conv3x3", "candidates": ["MYCONV", "NC3"], "mixed_op": "Counting"},
        "data": {"type": "digits", "size": 8, "channels": 3},
        "trainer": {"max_steps_per_epoch": 2},
        "optim": {"type": "FirstThenRandom"},
        "estim": [{"type": "SubNet", "budget": 2, "epochs": 1, "bn_steps": 1}],
        "export": {"test": False},
    }
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_user_candidate_mixed_op_and_optimizer_from_yaml_imports(tmp_path):
    with plugin_file(tmp_path):
        exp = build_experiment(load_config(config(tmp_path)))
        assert type(exp.optimizer).__name__ == "FirstThenRandom"
        ops = {type(op).__name__ for op in exp.model.modules() if hasattr(op, "slot_name")}
        assert ops == {"Counting"}
        summary = exp.run()
        plugin = sys.modules[type(exp.optimizer).__module__]
        assert plugin.CALLS["op"] > 0  # the user's mixed op ran the forward passes
        history = [yaml.safe_load(line) for line in (tmp_path / "exp" / "plug" / "history.jsonl").open()]
        assert set(history[0]["arch"].values()) == {"MYCONV"}  # the user's optimizer proposed first choices
        assert summary["results"] == 2


def test_user_components_from_the_cli_import_option(tmp_path):
    with plugin_file(tmp_path) as path:
        runner = CliRunner()
        res = runner.invoke(main, ["searchify", "--import", str(path), "fxnas/examples/tiny_net.py",
                                   "-p", "conv3x3", "-c", "MYCONV,NC3", "--mixed-op", "Counting", "-s", "1,3,8,8"])
        assert res.exit_code == 0, res.output
        assert "MYCONV,NC3" in res.output and "6 slots" in res.output and "space size: 64 archs" in res.output
        helped = runner.invoke(main, ["searchify", "--import", str(path), "--help"])
        assert "MYCONV" in helped.output and "Counting" in helped.output  # help lists imported components
        res = runner.invoke(main, ["search", "--import", str(path), "-c", str(config(tmp_path)), "--quiet",
                                   "-o", "imports=[]"])
        assert res.exit_code == 0, res.output
        assert "best architecture" in res.output
        bad = runner.invoke(main, ["searchify", "--import", str(tmp_path / "nope.py"), "x.py"])
        assert bad.exit_code == 2 and "does not exist" in bad.output
