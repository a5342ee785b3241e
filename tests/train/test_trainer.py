"""Trainers: learning on digits, weights-only optimisation, hooks, schedules, resume, regression."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import fxnas
from fxnas.errors import ConfigError
from fxnas.train import DATASETS, TRAINERS, Classification, Regression, Trainer


def small_cnn(channels: int = 1, classes: int = 10) -> nn.Module:
    """conv-bn-relu x2 + pool + linear: enough to learn digits in a few epochs."""
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))


@pytest.fixture(scope="module")
def digits():
    return DATASETS.build("digits", size=16, batch_size=32, seed=0)


def test_classification_learns_digits(digits):
    torch.manual_seed(0)
    model = small_cnn()
    t = Trainer(epochs=4, lr=0.1)
    before = t.evaluate(model, digits.valid)
    stats = t.fit(model, digits.train)
    after = t.evaluate(model, digits.valid)
    assert len(stats) == 4 and stats[-1]["loss"] < stats[0]["loss"]
    assert after["acc"] > 70.0 and after["acc"] > before["acc"] + 40
    assert after["loss"] < before["loss"]
    assert stats[-1]["lr"] == pytest.approx(0.0, abs=1e-9)  # cosine to lr_min at the last step
    assert model.training  # evaluate restores the mode


def test_optimizer_holds_weights_not_arch_params():
    net = fxnas.searchify(small_cnn(), pattern="conv3x3", candidates=["ORIG", "NC3"], mixed_op="SoftmaxSum",
                          example_inputs=torch.randn(1, 1, 16, 16))
    alphas = {id(p) for p in net.space.arch_parameters()}
    assert alphas
    t = Trainer()
    t.configure(net, steps_per_epoch=10)
    opt_params = [p for g in t.optimizer.param_groups for p in g["params"]]
    assert len(opt_params) == len(list(net.parameters()))
    assert not alphas & {id(p) for p in opt_params}
    before = [a.detach().clone() for a in net.space.arch_parameters()]
    t.train_step(net, (torch.randn(4, 1, 16, 16), torch.randint(0, 10, (4,))))
    assert all(torch.equal(a, b) for a, b in zip(net.space.arch_parameters(), before))


def test_train_step_clips_gradients_and_steps_scheduler():
    model = nn.Linear(4, 3)
    t = Trainer(epochs=1, lr=0.1, momentum=0.0, weight_decay=0.0, grad_clip=1e-3)
    t.configure(model, steps_per_epoch=4)
    w0 = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(8, 4) * 100, torch.randint(0, 3, (8,))
    out = t.train_step(model, (x, y))
    assert isinstance(out["loss"], float)
    step = torch.cat([(p.detach() - q).flatten() for p, q in zip(model.parameters(), w0)])
    # plain SGD: the update is lr * clipped grad, whose total norm is at most grad_clip
    assert float(step.norm()) <= 0.1 * 1e-3 * 1.01
    assert t.current_lr() == pytest.approx(0.05 * (1 + torch.cos(torch.tensor(torch.pi / 4)).item()), rel=1e-5)
    t2 = Trainer(scheduler="none", lr=0.1)
    t2.configure(model, 4)
    t2.train_step(model, (x, y))
    assert t2.current_lr() == 0.1 and t2.scheduler is None


def test_max_steps_and_step_fn_and_eval_fn(digits):
    calls = []

    def step_fn(model, batch):
        calls.append(batch[0].shape[0])
        return model(batch[0]).logsumexp(-1).mean()

    t = Trainer(max_steps_per_epoch=3, step_fn=step_fn, eval_fn=lambda m, loader: {"acc": 42, "x": 1})
    model = small_cnn()
    seen = []
    s = t.train_epoch(model, digits.train, 0, before_step=lambda i, b: seen.append(i))
    assert s["steps"] == 3 and calls == [32, 32, 32] and seen == [0, 1, 2]
    assert t.evaluate(model, digits.valid) == {"acc": 42.0, "x": 1.0}
    assert Trainer().evaluate(model, digits.valid, max_steps=1)["acc"] >= 0


def test_step_fn_from_file(tmp_path):
    (tmp_path / "steps.py").write_text(
        "def step(model, batch):\n    x, y = batch\n    return ((model(x).squeeze(-1) - y) ** 2).mean()\n")
    t = Trainer(step_fn=f"{tmp_path / 'steps.py'}:step", lr=0.01)
    model = nn.Linear(2, 1)
    t.configure(model, 1)
    assert t.train_step(model, (torch.randn(4, 2), torch.randn(4)))["loss"] >= 0


def test_resume_matches_uninterrupted(digits):
    def run(split: bool) -> nn.Module:
        torch.manual_seed(1)
        model = small_cnn()
        t = Trainer(epochs=2, lr=0.05, max_steps_per_epoch=5)
        t.configure(model, t.steps_for(digits.train))
        t.train_epoch(model, digits.train, 0)
        if split:  # checkpoint, rebuild everything, restore, continue
            state = copy.deepcopy((model.state_dict(), t.state_dict()))
            model = small_cnn()
            model.load_state_dict(state[0])
            t = Trainer(epochs=2, lr=0.05, max_steps_per_epoch=5)
            t.load_state_dict(state[1])  # kept until configure
            t.configure(model, t.steps_for(digits.train))
        t.train_epoch(model, digits.train, 1)
        return model

    a, b = run(False), run(True)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(v.float(), w.float(), atol=1e-6), k


def test_regression_trainer_on_tensors(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.3
    torch.save({"X": x, "y": y}, tmp_path / "reg.pt")
    data = DATASETS.build("tensors", path=str(tmp_path / "reg.pt"), batch_size=32, normalize=False)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    t = TRAINERS.build("Regression", epochs=15, lr=0.05, weight_decay=0.0)
    before = t.evaluate(model, data.valid)
    t.fit(model, data.train)
    after = t.evaluate(model, data.valid)
    assert set(after) >= {"neg_mse", "mse", "loss"} and after["neg_mse"] == -after["mse"]
    assert after["mse"] < 0.1 * before["mse"] and after["mse"] < 0.2
    assert Regression.metric == "neg_mse" and Classification.metric == "acc"


def test_clone_deepcopy_and_registry():
    t = Trainer(epochs=3, lr=0.2, criteria=["LabelSmoothing"])
    t.configure(nn.Linear(2, 2), 5)
    c = t.clone(epochs=1)
    assert c.optimizer is None and c.epochs == 1 and c.lr == 0.2 and c.criteria is t.criteria
    d = copy.deepcopy(t)
    assert d.optimizer is None and d.lr == 0.2 and type(d.criteria.criteria[0]).__name__ == "LabelSmoothing"
    assert TRAINERS.get("Classification") is Trainer and TRAINERS.get("Regression") is Regression
    with pytest.raises(ConfigError, match="scheduler"):
        Trainer(scheduler="step")
    with pytest.raises(ConfigError, match="Classification has no option 'learning_rate' Valid options: epochs, lr"):
        TRAINERS.build("Classification", learning_rate=0.1)
    with pytest.raises(ConfigError, match="configure"):
        Trainer().train_step(nn.Linear(2, 2), (torch.randn(1, 2), torch.tensor([0])))


def test_state_loaded_before_configure_survives_a_checkpoint():
    model = nn.Linear(3, 2)
    t = Trainer(epochs=1, lr=0.1)
    t.configure(model, 4)
    t.train_step(model, (torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1])))
    saved = copy.deepcopy(t.state_dict())
    fresh = Trainer(epochs=1, lr=0.1)
    fresh.load_state_dict(saved)
    again = fresh.state_dict()  # e.g. a checkpoint written before the stage configures the trainer
    assert again["optimizer"] is not None and again["scheduler"] == saved["scheduler"]
    fresh.configure(nn.Linear(3, 2), 4)
    assert fresh.state_dict()["scheduler"]["last_epoch"] == 1
    buf = fresh.optimizer.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(buf, saved["optimizer"]["state"][0]["momentum_buffer"])


def test_train_step_sums_the_gradients_of_several_losses():
    """losses=[f, g]: one step whose gradient is that of f + g (each backpropagated on its own), reporting
    their mean; a non-finite one skips the step."""
    torch.manual_seed(0)
    batch = (torch.randn(8, 4), torch.randint(0, 3, (8,)))
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    f = lambda m, bt: nn.functional.cross_entropy(m(bt[0]), bt[1])  # noqa: E731
    g = lambda m, bt: (m(bt[0]) ** 2).mean()  # noqa: E731
    ta, tb = (Trainer(lr=0.1, grad_clip=None, scheduler="none") for _ in range(2))
    ta.configure(a, 1)
    tb.configure(b, 1)
    with torch.no_grad():
        want_loss = (float(f(a, batch)) + float(g(a, batch))) / 2
    out = ta.train_step(a, batch, losses=[f, g])
    tb.train_step(b, batch, losses=[lambda m, bt: f(m, bt) + g(m, bt)])
    assert out["loss"] == pytest.approx(want_loss, rel=1e-6)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)
    before = [p.detach().clone() for p in a.parameters()]
    assert ta.train_step(a, batch, losses=[f, lambda m, bt: torch.tensor(float("nan"))]) == {"diverged": 1.0}
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), before))


def test_configure_takes_a_learning_rate_for_this_schedule():
    model = nn.Linear(4, 3)
    t = Trainer(lr=0.1)
    t.configure(model, 10, epochs=2, lr=0.03)
    assert t.current_lr() == pytest.approx(0.03) and t.lr == 0.1
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        t.configure(model, 10, lr=0.0)
