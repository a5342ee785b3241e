"""Gradient optimizers: each moves a rigged supernet's arch to the only candidates that give a low loss."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxnas
from fxnas.candidates.registry import CANDIDATES
from fxnas.errors import ConfigError
from fxnas.mixed import arch_step
from fxnas.optim import OPTIMIZERS
from fxnas.optim.cost import ExpectedCost
from fxnas.optim.gradient import DARTS, GumbelAnnealing
from fxnas.slot import SlotSpec
from fxnas.train.trainer import TRAINERS

C = 4
TARGET = {"a": "TVEC1", "b": "TVEC3"}


class OneHot(nn.Module):
    """Test candidate: a constant output, 1 on channel ``i`` and 0 elsewhere."""

    def __init__(self, i: int, channels: int) -> None:
        super().__init__()
        e = torch.zeros(1, channels, 1, 1)
        e[0, i] = 1.0
        self.register_buffer("e", e)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0 + self.e


def _tvec(i: str):
    def build(spec: SlotSpec) -> nn.Module:
        return OneHot(int(i), spec.out_channels)

    return build


@pytest.fixture(autouse=True, scope="module")
def tvec_candidates():
    """The test-only TVEC{i} candidates, registered for this module only (the registry is global)."""
    n = len(CANDIDATES._families)
    CANDIDATES.register_family(r"TVEC(\d+)", "TVEC0")(_tvec)
    yield
    del CANDIDATES._families[n:]


class Rig(nn.Module):
    """Two searchable convs side by side, times a learnable scale: the loss is 0 only for TARGET."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(C, C, 3, padding=1)
        self.b = nn.Conv2d(C, C, 3, padding=1)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], 1) * self.scale


def target(n: int = 2) -> torch.Tensor:
    t = torch.zeros(n, 2 * C, 2, 2)
    t[:, 1] = 1.0
    t[:, C + 3] = 1.0
    return t


class StandInTrainer:
    """The trainer contract the optimizers rely on: loss, train_step, optimizer (SGD)."""

    def __init__(self, model: nn.Module, lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 3e-4):
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        return F.mse_loss(model(batch[0]), batch[1])

    def train_step(self, model: nn.Module, batch) -> dict[str, float]:
        self.optimizer.zero_grad()
        loss = self.loss(model, batch)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach())}


def make_exp(mixed_op: str, **trainer_options):
    x = torch.randn(2, C, 2, 2)
    sn = fxnas.searchify(Rig(), "conv3x3", [f"TVEC{i}" for i in range(C)], x, mixed_op=mixed_op)
    exp = SimpleNamespace(model=sn, space=sn.space, device="cpu", trainer=StandInTrainer(sn, **trainer_options))
    return exp, (x, target())


def run(exp, batch, opt, steps: int, epoch_len: int = 10) -> int:
    """Interleave weight and arch steps as the SuperNet estimator does; returns the last step the derived
    arch was wrong (+1), i.e. the arch steps it took to settle on TARGET."""
    settled = 0
    for t in range(steps):
        exp.trainer.train_step(exp.model, batch)
        opt.step_arch(exp, batch, batch)
        if (t + 1) % epoch_len == 0:
            opt.on_epoch_end(exp, (t + 1) // epoch_len - 1)
        if {k: opt.best()[k] for k in TARGET} != TARGET:
            settled = t + 1
    return settled


CASES = [
    ("DARTS", "SoftmaxSum", {}),
    ("DARTS", "SoftmaxSum", {"unrolled": True}),
    ("DARTS", "SoftmaxSum", {"one_level": True}),
    ("DirectGrad", "SoftmaxSum", {}),
    ("DirectGradBiLevel", "SoftmaxSum", {}),
    ("BinaryGate", "BinaryGate", {}),
    ("BinaryGate", "BinaryGateUniform", {}),
    ("GumbelAnnealing", "GumbelSum", {}),
    ("REINFORCE", "Index", {"reward": "neg_loss"}),
    ("REINFORCE", "BinaryGate", {"reward": "neg_loss"}),
]


@pytest.mark.parametrize("optim,mixed_op,options", CASES, ids=[f"{o}-{m}-{len(x)}" for o, m, x in CASES])
def test_optimizer_finds_rigged_arch(optim: str, mixed_op: str, options: dict) -> None:
    exp, batch = make_exp(mixed_op)
    opt = OPTIMIZERS.get(optim)(exp.space, seed=0, **options)
    settled = run(exp, batch, opt, 150)
    assert {k: opt.best()[k] for k in TARGET} == TARGET
    assert settled < 150
    derived = exp.space.derive()
    sub = fxnas.materialize(exp.model, derived).eval()
    out = sub(batch[0]).abs()  # the derived subnet runs the target candidates: one-hots on channels 1 and 3
    assert (out[:, :C].argmax(1) == 1).all() and (out[:, C:].argmax(1) == 3).all()


def test_paper_defaults() -> None:
    exp, _ = make_exp("SoftmaxSum")
    d = DARTS(exp.space)
    assert d.adam.defaults["lr"] == 3e-4 and d.adam.defaults["betas"] == (0.5, 0.999)
    assert d.adam.defaults["weight_decay"] == 1e-3
    exp, _ = make_exp("BinaryGate")
    b = OPTIMIZERS.get("BinaryGate")(exp.space)
    assert b.adam.defaults["lr"] == 6e-3 and b.adam.defaults["betas"] == (0.0, 0.999)
    assert b.adam.defaults["eps"] == 1e-8


def test_needs_alphas() -> None:
    exp, _ = make_exp("Index")
    with pytest.raises(ConfigError, match="SoftmaxSum"):
        DARTS(exp.space)
    with pytest.raises(ConfigError, match="unknown options"):
        OPTIMIZERS.get("BinaryGate")(make_exp("BinaryGate")[0].space, bogus=1)


def test_unrolled_matches_exact_second_order_gradient() -> None:
    """DARTS's finite-difference estimate equals the exact d/da L_val(w - xi grad_w L_train(w, a), a)."""
    exp, batch = make_exp("SoftmaxSum", momentum=0.0, weight_decay=0.0)
    xval = (torch.randn(2, C, 2, 2), target() * 0.5)  # a different valid batch so both terms matter
    opt = DARTS(exp.space, unrolled=True, xi=0.1)
    with torch.no_grad():
        for p in opt.params:
            p.normal_(0, 1)
    model, tr = exp.model, exp.trainer
    w = model.scale
    before = w.detach().clone()
    loss, approx = opt.arch_gradient(exp, batch, xval)
    assert torch.equal(w.detach(), before)  # real weights restored
    g = torch.autograd.grad(tr.loss(model, batch), [w], create_graph=True)[0]
    w_virtual = w - 0.1 * g
    saved = w.data.clone()
    # L_val at w' as a function of (alpha, w'(alpha)): swap the weight for the virtual tensor
    del model.scale
    model.scale = w_virtual
    try:
        exact = torch.autograd.grad(tr.loss(model, xval), opt.params)
    finally:
        del model.scale
        model.scale = nn.Parameter(saved)
    first = opt._grads(tr.loss(model, xval))
    for a, e in zip(approx, exact):
        torch.testing.assert_close(a, e, rtol=1e-3, atol=1e-5)
    assert any(not torch.allclose(e, f, atol=1e-5) for e, f in zip(exact, first))  # second order matters


def test_gumbel_temperature_annealed() -> None:
    exp, batch = make_exp("GumbelSum")
    opt = GumbelAnnealing(exp.space, temperature=1.0, anneal_rate=0.5, min_temperature=0.2)
    ops = [m for m in exp.model.modules() if type(m).__name__ == "GumbelSum"]
    temps = []
    for e in range(4):
        opt.on_epoch_end(exp, e)
        temps.append(ops[0].temperature)
    assert temps == pytest.approx([0.5, 0.25, 0.2, 0.2])
    assert all(op.temperature == temps[-1] for op in ops)


@pytest.mark.parametrize("optim,mixed_op,options", [("DARTS", "SoftmaxSum", {}), ("BinaryGate", "BinaryGate", {}),
                                                    ("REINFORCE", "Index", {"reward": "neg_loss"}),
                                                    ("GumbelAnnealing", "GumbelSum", {})])
def test_resume_equals_uninterrupted(optim: str, mixed_op: str, options: dict) -> None:
    """state_dict carries Adam state and alphas: 10 steps + save/load + 10 steps == 20 steps."""
    def fresh():
        torch.manual_seed(0)
        exp, batch = make_exp(mixed_op)
        return exp, batch, OPTIMIZERS.get(optim)(exp.space, seed=3, **options)

    exp, batch, opt = fresh()
    for _ in range(20):
        opt.step_arch(exp, batch, batch)
    want = [p.detach().clone() for p in opt.params]

    exp, batch, opt = fresh()
    for _ in range(10):
        opt.step_arch(exp, batch, batch)
    state = opt.state_dict()
    rng = torch.get_rng_state()
    exp2, batch2, opt2 = fresh()
    opt2.load_state_dict(state)
    torch.set_rng_state(rng)
    assert "adam" in state and state["adam"]["state"]
    for _ in range(10):
        opt2.step_arch(exp2, batch2, batch2)
    for a, b in zip(opt2.params, want):
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=1e-6)


def test_binary_gate_step_keeps_unsampled_alphas() -> None:
    exp, batch = make_exp("BinaryGate")
    opt = OPTIMIZERS.get("BinaryGate")(exp.space)
    with torch.no_grad():
        for p in opt.params:
            p.normal_(0, 0.5)
    before = [p.detach().clone() for p in opt.params]
    ops = [m for m in exp.model.modules() if type(m).__name__ == "BinaryGate"]
    exp.model.train()
    with arch_step(exp.model) as stats:  # the BinaryGate ops' hooks: forget old pairs, then rescale
        loss = exp.trainer.loss(exp.model, batch)  # record the pairs this step will use
        pairs = [list(op.involved) for op in ops]
        opt._apply(opt._grads(loss))
    assert stats["rescaled"] == len(ops)
    for op, pair in zip(ops, pairs):
        i = [id(p) for p in opt.params].index(id(op.alpha))
        new, old = op.alpha.detach(), before[i]
        rest = [k for k in range(C) if k not in pair]
        assert torch.equal(new[rest], old[rest])
        torch.testing.assert_close(torch.logsumexp(new[pair], 0), torch.logsumexp(old[pair], 0))
        assert not torch.allclose(new[pair], old[pair])


class Classifier(nn.Module):
    """One searchable conv whose constant output is the logits: class 2 is right only with TVEC2."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(C, C, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.a(x), 1)


def test_reinforce_accuracy_reward() -> None:
    x = torch.randn(8, C, 1, 1)
    sn = fxnas.searchify(Classifier(), "conv3x3", [f"TVEC{i}" for i in range(C)], x, mixed_op="Index")
    exp = SimpleNamespace(model=sn, space=sn.space, device="cpu", trainer=TRAINERS.build("Classification"))
    opt = OPTIMIZERS.get("REINFORCE")(sn.space, seed=0)  # reward "acc" by default, as in ProxylessNAS
    assert "a.alpha" in sn.space  # Index ops have no alphas: REINFORCE adds its policy's
    logs = [opt.step_arch(exp, None, (x, torch.full((8,), 2))) for _ in range(150)]
    assert opt.best() == {"a": "TVEC2"}
    assert {log["reward"] for log in logs} == {0.0, 100.0}  # the trainer's accuracy, in percent
    assert sum(log["reward"] for log in logs[-30:]) > sum(log["reward"] for log in logs[:30])


def test_derive_option() -> None:
    exp, _ = make_exp("SoftmaxSum")
    with pytest.raises(ConfigError, match="derive"):
        DARTS(exp.space, derive="nope")
    assert DARTS(exp.space, derive="darts_cell").best() == exp.space.derive()  # no cell params: argmax
    with torch.no_grad():  # not only at init: params outside DARTS cells follow their alphas
        exp.space["a.alpha"].value[2] = 3.0
    assert DARTS(exp.space, derive="darts_cell").best()["a"] == "TVEC2" != exp.space.current()["a"]


def _doc_configs() -> list[dict]:
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[2] / "docs" / "oneshot.md").read_text()
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_doc_examples_are_valid_configs(tmp_path) -> None:
    from fxnas.config import load_config

    configs = _doc_configs()
    optims = {c["optim"]["type"] for c in configs}
    assert optims == {"DARTS", "BinaryGate", "REINFORCE", "GumbelAnnealing", "DirectGrad", "DirectGradBiLevel"}
    for raw in configs:
        cfg = load_config(raw, out_root=str(tmp_path))
        assert cfg["optim"]["type"] in OPTIMIZERS


@pytest.mark.slow
@pytest.mark.parametrize("index", range(7))
def test_doc_examples_run(index: int, tmp_path) -> None:
    from fxnas.config import build_experiment, load_config

    raw = _doc_configs()[index]
    cfg = load_config(raw, out_root=str(tmp_path))
    cfg["progress"] = False
    exp = build_experiment(cfg, progress=False)
    exp.run()
    arch = exp.optimizer.best()
    assert set(arch) == set(exp.space.discrete())


class Plain(nn.Module):
    """Two 3x3 convs whose output the rigged loss ignores: only the cost term moves the alphas."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(C, C, 3, padding=1)
        self.b = nn.Conv2d(C, C, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


@pytest.mark.parametrize("optim,mixed_op", [("DARTS", "SoftmaxSum"), ("BinaryGate", "BinaryGate"),
                                            ("GumbelAnnealing", "GumbelSum")])
def test_cost_term_moves_the_arch_to_the_cheapest_candidates(optim: str, mixed_op: str) -> None:
    x = torch.randn(2, C, 6, 6)
    sn = fxnas.searchify(Plain(), "conv3x3", ["NC7", "NC5", "NC3", "IDT"], x, mixed_op=mixed_op)
    exp = SimpleNamespace(model=sn, space=sn.space, device="cpu", trainer=StandInTrainer(sn))
    exp.trainer.loss = lambda model, batch: 0.0 * model(batch[0]).sum()  # the task is indifferent to the arch
    opt = OPTIMIZERS.get(optim)(exp.space, seed=0, lr=0.02, cost={"metric": "flops", "weight": 1.0})
    first = opt.step_arch(exp, (x, None), (x, None))["arch_flops"]
    for _ in range(150):
        last = opt.step_arch(exp, (x, None), (x, None))["arch_flops"]
    assert opt.best() == {"a": "IDT", "b": "IDT"}  # identity: no multiply-accumulates
    assert last < first


@pytest.mark.parametrize("criterion", ["logmul", "add"])
def test_latency_criterion_moves_the_arch_to_the_fastest_candidates(criterion: str, tmp_path) -> None:
    """ProxylessNAS's hardware loss on the latency table: with a task loss indifferent to the arch, the alphas
    go to the candidates the table measures fastest, and the expected latency falls."""
    x = torch.randn(2, C, 6, 6)
    sn = fxnas.searchify(Plain(), "conv3x3", ["NC7", "NC3", "IDT"], x, mixed_op="BinaryGate")
    exp = SimpleNamespace(model=sn, space=sn.space, device="cpu", trainer=StandInTrainer(sn))
    exp.trainer.loss = lambda model, batch: 1.0 + 0.0 * model(batch[0]).sum()
    cost = {"metric": "latency_ms", "criterion": criterion, "target": 2.0, "scale": 1000.0,
            "latency": {"repeats": 5, "warmup": 1, "cache": str(tmp_path / "lat.sqlite")}}
    opt = OPTIMIZERS.get("BinaryGate")(exp.space, seed=0, lr=0.05, cost=cost)
    first = opt.step_arch(exp, (x, None), (x, None))["arch_latency_ms"]
    for _ in range(120):
        last = opt.step_arch(exp, (x, None), (x, None))["arch_latency_ms"]
    table = {(t.param, name): o.fixed["latency_ms"] for t in opt.cost.tree.terms for name, o in t.options.items()}
    fastest = {p: min(("NC7", "NC3", "IDT"), key=lambda c, p=p: table[(p, c)]) for p in ("a", "b")}
    assert opt.best() == fastest, (opt.best(), table)
    assert last < first, (first, last)


def test_expected_cost_matches_the_graph_count() -> None:
    from fxnas.objectives import GraphCost

    x = torch.randn(1, C, 6, 6)
    sn = fxnas.searchify(Plain(), "conv3x3", ["NC7", "NC3", "IDT"], x, mixed_op="SoftmaxSum")
    opt = DARTS(sn.space, cost={"metric": "flops", "weight": 1.0})
    arch = {"a": "NC7", "b": "NC3"}
    with torch.no_grad():  # alphas one-hot enough that the expectation is the arch's own count
        for name, choice in arch.items():
            alpha = sn.space[f"{name}.alpha"].value
            alpha.fill_(-30.0)
            alpha[sn.space[name].choices.index(choice)] = 30.0
    _, expected = opt.cost(sn, sn.space)
    assert expected == pytest.approx(GraphCost(sn)(arch)["flops"], rel=1e-6)


def test_bad_cost_options() -> None:
    exp, _ = make_exp("SoftmaxSum")
    with pytest.raises(ConfigError, match=r"metric must be one of \['flops'.*'latency_ms'\]"):
        DARTS(exp.space, cost={"metric": "latency"})
    with pytest.raises(ConfigError, match="needs a target"):
        DARTS(exp.space, cost={"metric": "latency_ms", "criterion": "logmul"})
    with pytest.raises(ConfigError, match="unknown hardware criterion 'log'"):
        DARTS(exp.space, cost={"criterion": "log", "target": 2.0})
    with pytest.raises(ConfigError, match="belong to a criterion"):
        DARTS(exp.space, cost={"metric": "flops", "target": 2.0})
    with pytest.raises(ConfigError, match="latency got unknown keys"):
        DARTS(exp.space, cost={"metric": "latency_ms", "latency": {"repeat": 3}})
    with pytest.raises(ConfigError, match="logmul target"):
        DARTS(exp.space, cost={"metric": "latency_ms", "criterion": "logmul", "target": 0.5})
    with pytest.raises(ConfigError, match="REINFORCE takes no cost"):
        OPTIMIZERS.get("REINFORCE")(exp.space, cost={"weight": 1.0})


class DictClassifier(nn.Module):
    """Classifier fed dict batches {"x": ...}: only a trainer's step_fn / eval_fn knows how to call it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(C, C, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.a(x), 1)


def test_reinforce_acc_reward_goes_through_the_trainer() -> None:
    """The reward is the trainer's metric from trainer.evaluate: eval_fn (dict batches) and Regression work."""
    x = torch.randn(8, C, 1, 1)
    sn = fxnas.searchify(DictClassifier(), "conv3x3", [f"TVEC{i}" for i in range(C)], x, mixed_op="Index")
    seen = []

    def eval_fn(model, loader):
        batches = list(loader)
        seen.append(len(batches))
        b = batches[0]
        return {"acc": float((model(b["x"]).argmax(-1) == b["y"]).float().mean()), "loss": 0.0}

    trainer = TRAINERS.build("Classification", eval_fn=eval_fn, step_fn=lambda m, b: m(b["x"]).sum())
    exp = SimpleNamespace(model=sn, space=sn.space, device="cpu", trainer=trainer)
    opt = OPTIMIZERS.get("REINFORCE")(sn.space, seed=0)
    for _ in range(150):
        log = opt.step_arch(exp, None, {"x": x, "y": torch.full((8,), 2)})
    assert seen == [1] * 150 and log["reward"] in (0.0, 1.0)
    assert opt.best() == {"a": "TVEC2"}

    sn = fxnas.searchify(Classifier(), "conv3x3", [f"TVEC{i}" for i in range(C)], x, mixed_op="Index")
    exp = SimpleNamespace(model=sn, space=sn.space, device="cpu", trainer=TRAINERS.build("Regression"))
    opt = OPTIMIZERS.get("REINFORCE")(sn.space, seed=0)  # reward "acc": the trainer's metric, neg_mse here
    y = F.one_hot(torch.full((8,), 1), C).float()  # TVEC1 regresses y exactly
    logs = [opt.step_arch(exp, None, (x, y)) for _ in range(150)]
    assert opt.best() == {"a": "TVEC1"}
    assert max(log["reward"] for log in logs) == 0.0 and min(log["reward"] for log in logs) == pytest.approx(-0.5)


def test_reinforce_reward_uses_batch_statistics() -> None:
    """trainer.evaluate puts its model in eval mode; the reward keeps train mode (batch statistics)."""
    x = torch.randn(8, C, 1, 1)
    sn = fxnas.searchify(Classifier(), "conv3x3", [f"TVEC{i}" for i in range(C)], x, mixed_op="Index")
    modes = []
    sn.register_forward_pre_hook(lambda m, i: modes.append(m.training))
    exp = SimpleNamespace(model=sn, space=sn.space, device="cpu", trainer=TRAINERS.build("Classification"))
    sn.eval()
    OPTIMIZERS.get("REINFORCE")(sn.space, seed=0).step_arch(exp, None, (x, torch.full((8,), 2)))
    assert modes == [True] and sn.training is False  # the mode is restored afterwards


def test_cost_option_is_validated_into_config_errors() -> None:
    exp, _ = make_exp("SoftmaxSum")
    for bad, match in [({"metric": "flops", "wieght": 1.0}, r"unknown keys \['wieght'\].*metric.*weight"),
                       ({"weight": "0.1"}, "weight must be a number >= 0"), ({"weight": -1.0}, "number >= 0"),
                       ({"weight": True}, "number >= 0"), ({"metric": ["flops"]}, "metric must be one of"),
                       ("flops", "must be a mapping.*metric.*weight")]:
        with pytest.raises(ConfigError, match=match):
            DARTS(exp.space, cost=bad)
    assert DARTS(exp.space, cost={"metric": "params", "weight": 2}).cost.weight == 2.0
    assert isinstance(DARTS(exp.space, cost={}).cost, ExpectedCost) and DARTS(exp.space).cost is None


def test_gumbel_on_start_sets_the_temperature() -> None:
    exp, _ = make_exp("GumbelSum")
    opt = GumbelAnnealing(exp.space, temperature=0.4)
    ops = [m for m in exp.model.modules() if type(m).__name__ == "GumbelSum"]
    assert all(op.temperature == 1.0 for op in ops)  # the ops' construct-time temperature
    opt.on_start(exp)
    assert all(op.temperature == pytest.approx(0.4) for op in ops)


@pytest.mark.parametrize("name", ["darts", "darts2"])
def test_packaged_darts_configs_derive_the_darts_cell(name: str, tmp_path) -> None:
    """With argmax every edge stays and NIL can win; the DARTS rule keeps 2 non-NIL inputs per node."""
    from fxnas.config import build_experiment, load_config

    cfg = load_config(name, out_root=str(tmp_path))
    cfg["progress"] = False
    exp = build_experiment(cfg, progress=False)
    assert exp.optimizer.derive == "darts_cell"
    with torch.no_grad():  # NIL strongest everywhere: argmax would drop every edge
        for t in exp.space.tensors().values():
            t.value.fill_(0.0)
            t.value[exp.space[t.categorical].choices.index("NIL")] = 5.0
    arch = exp.optimizer.best()
    steps = cfg["model"]["options"]["steps"]
    for cell in ("normal", "reduce"):
        kept = [k for k, v in arch.items() if k.startswith(cell + ".") and v != "NIL"]
        assert len(kept) == 2 * steps


def test_gumbel_on_resume_sets_the_temperature_once_the_search_started() -> None:
    """A resume inside a warm-up stage keeps the ops' own temperature, as the uninterrupted warm-up had it."""
    exp, _ = make_exp("GumbelSum")
    ops = [m for m in exp.model.modules() if type(m).__name__ == "GumbelSum"]
    opt = GumbelAnnealing(exp.space, temperature=0.4)
    opt.load_state_dict(GumbelAnnealing(exp.space, temperature=0.4).state_dict())
    opt.on_resume(exp)
    assert all(op.temperature == 1.0 for op in ops)
    started = GumbelAnnealing(exp.space, temperature=0.4)
    started.on_start(exp)
    for op in ops:
        op.temperature = 1.0  # a fresh process builds the ops at their construct temperature
    opt.load_state_dict(started.state_dict())
    opt.on_resume(exp)
    assert all(op.temperature == pytest.approx(0.4) for op in ops)
