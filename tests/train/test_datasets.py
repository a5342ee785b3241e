"""Offline datasets: digits, tensors, image folders, user python functions; deterministic epoch order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fxnas.errors import ConfigError, RegistryError
from fxnas.train import DATASETS, DataBundle
from fxnas.train.sampling import EpochSampler


def _ys(loader):
    return torch.cat([b[1] for b in loader])


def test_digits_shapes_splits_and_normalisation():
    d = DATASETS.build("digits", size=16, channels=3, batch_size=50, valid_fraction=0.2, test_fraction=0.1, seed=1)
    assert isinstance(d, DataBundle)
    assert d.input_shape == (1, 3, 16, 16) and d.num_classes == 10
    n_tr, n_va, n_te = (len(x.dataset) for x in (d.train, d.valid, d.test))
    assert n_tr + n_va + n_te == 1797
    assert n_va == round(1797 * 0.2) and n_te == round(1797 * 0.1)
    x, y = next(iter(d.train))
    assert x.shape == (50, 3, 16, 16) and y.dtype == torch.long
    assert torch.equal(x[:, 0], x[:, 2])  # channels are copies of the grey image
    xs = torch.cat([b[0] for b in d.train])
    assert abs(float(xs.mean())) < 1e-4 and abs(float(xs.std()) - 1) < 1e-3  # train statistics
    assert set(_ys(d.valid).tolist()) == set(range(10))


def test_digits_splits_are_disjoint_and_seeded():
    a = DATASETS.build("digits", seed=3, test_fraction=0.0)
    b = DATASETS.build("digits", seed=3, test_fraction=0.0)
    c = DATASETS.build("digits", seed=4, test_fraction=0.0)
    assert a.test is None
    assert torch.equal(a.valid.dataset.tensors[0], b.valid.dataset.tensors[0])
    assert not torch.equal(a.valid.dataset.tensors[0], c.valid.dataset.tensors[0])
    tr = {tuple(r.tolist()) for r in a.train.dataset.tensors[0].flatten(1)}
    va = [tuple(r.tolist()) for r in a.valid.dataset.tensors[0].flatten(1)]
    # digits has a few duplicate images; the split itself is disjoint by index, so overlaps stay rare
    assert sum(v in tr for v in va) < 10


def test_epoch_order_is_deterministic_per_epoch():
    d = DATASETS.build("digits", batch_size=64)
    d.set_epoch(0)
    e0 = _ys(d.train)
    d.set_epoch(1)
    e1 = _ys(d.train)
    d.set_epoch(0)
    again = _ys(d.train)
    assert torch.equal(e0, again) and not torch.equal(e0, e1)
    # a "resumed" bundle built from the same config replays the same epoch order
    d2 = DATASETS.build("digits", batch_size=64)
    d2.set_epoch(1)
    assert torch.equal(_ys(d2.train), e1)
    # mid-epoch resume: skipping 3 batches gives the tail of the same order
    d2.set_epoch(1, skip_batches=3)
    assert torch.equal(_ys(d2.train), e1[3 * 64:])


def test_epoch_sampler_permutation():
    s = EpochSampler(10, seed=5)
    s.set_epoch(2)
    order = list(s)
    assert sorted(order) == list(range(10)) and len(s) == 10
    s.set_epoch(2, skip=4)
    assert len(s) == 6 and list(s) == order[4:]  # len: the pending pass; the pass then consumes the skip
    assert list(EpochSampler(4, shuffle=False)) == [0, 1, 2, 3]


def test_digits_sizes_and_bad_options():
    assert DATASETS.build("digits", size=32).input_shape == (1, 1, 32, 32)
    with pytest.raises(ConfigError, match="8, 16 or 32"):
        DATASETS.build("digits", size=12)
    with pytest.raises(ConfigError, match="digits has no option 'bogus'"):
        DATASETS.build("digits", bogus=1)
    with pytest.raises(ConfigError, match="valid_fraction"):
        DATASETS.build("digits", valid_fraction=1.5)
    with pytest.raises(RegistryError, match="digits"):
        DATASETS.build("digit")
    assert {"digits", "image_folder", "tensors", "python"} <= set(DATASETS.names())


def test_tensors_classification_and_regression(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g) * 5 + 3
    torch.save({"X": x, "y": (x[:, 0] > 3).long()}, tmp_path / "cls.pt")
    d = DATASETS.build("tensors", path=str(tmp_path / "cls.pt"), batch_size=16, valid_fraction=0.25)
    assert d.input_shape == (1, 6) and d.num_classes == 2
    assert len(d.valid.dataset) == 50 and d.test is None
    xs = torch.cat([b[0] for b in d.train])
    assert torch.allclose(xs.mean(0), torch.zeros(6), atol=1e-5)  # standardised by train stats
    torch.save((x, x[:, :2].sum(1, keepdim=True)), tmp_path / "reg.pt")
    r = DATASETS.build("tensors", path=str(tmp_path / "reg.pt"), normalize=False, test_fraction=0.1)
    assert r.num_classes == 1 and next(iter(r.train))[1].dtype == torch.float32
    assert len(r.test.dataset) == 20
    with pytest.raises(ConfigError, match="does not exist"):
        DATASETS.build("tensors", path=str(tmp_path / "nope.pt"))
    torch.save({"X": x}, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="'X' and 'y'"):
        DATASETS.build("tensors", path=str(tmp_path / "bad.pt"))


def _write_images(root, classes=("cat", "dog", "owl"), per_class=6, size=12):
    rng = np.random.default_rng(0)
    for ci, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = (rng.random((size, size, 3)) * 80 + ci * 80).astype(np.uint8)  # class-dependent brightness
            Image.fromarray(arr).save(root / c / f"{i}.png")


def test_image_folder_split_and_resize(tmp_path):
    _write_images(tmp_path / "imgs")
    d = DATASETS.build("image_folder", root=str(tmp_path / "imgs"), size=8, batch_size=4, valid_fraction=0.25)
    assert d.num_classes == 3 and d.input_shape == (1, 3, 8, 8)
    assert len(d.train.dataset) + len(d.valid.dataset) == 18 and len(d.valid.dataset) == 4
    x, y = next(iter(d.train))
    assert x.shape == (4, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    g = DATASETS.build("image_folder", root=str(tmp_path / "imgs"), size=8, channels=1, augment=True)
    assert next(iter(g.valid))[0].shape[1] == 1


def test_image_folder_with_split_folders(tmp_path):
    _write_images(tmp_path / "ds" / "train", per_class=4)
    _write_images(tmp_path / "ds" / "val", per_class=2)
    _write_images(tmp_path / "ds" / "test", per_class=1)
    d = DATASETS.build("image_folder", root=str(tmp_path / "ds"), size=8)
    assert (len(d.train.dataset), len(d.valid.dataset), len(d.test.dataset)) == (12, 6, 3)
    with pytest.raises(ConfigError, match="not a directory"):
        DATASETS.build("image_folder", root=str(tmp_path / "missing"))


def test_python_dataset(tmp_path):
    f = tmp_path / "mydata.py"
    f.write_text(
        "from fxnas.train import DATASETS\n"
        "def make(size=8):\n    return DATASETS.build('digits', size=size)\n"
        "def wrong():\n    return 3\n")
    d = DATASETS.build("python", fn=f"{f}:make", size=16)
    assert d.input_shape == (1, 1, 16, 16)
    with pytest.raises(ConfigError, match="must return"):
        DATASETS.build("python", fn=f"{f}:wrong")
    with pytest.raises(ConfigError, match="no 'nothere'"):
        DATASETS.build("python", fn=f"{f}:nothere")


def test_fixed_batches_are_repeatable_and_leave_rng_alone():
    from fxnas.train import fixed_batches

    d = DATASETS.build("digits", batch_size=16)
    state = torch.get_rng_state()
    a, b = fixed_batches(d.train, 3, epoch=2), fixed_batches(d.train, 3, epoch=2)
    assert torch.equal(torch.get_rng_state(), state)
    assert len(a) == 3 and all(torch.equal(x[0], y[0]) for x, y in zip(a, b))
    d.set_epoch(2)
    assert torch.equal(next(iter(d.train))[1], a[0][1])


def test_a_skip_applies_to_one_pass_only():
    from fxnas.train import Trainer

    s = EpochSampler(10, seed=5)
    s.set_epoch(2)
    order = list(s)
    s.set_epoch(2, skip=4)
    assert list(s) == order[4:]
    assert len(s) == 10 and list(s) == order  # the next pass (the next epoch) is whole again
    # at loader level: steps_for counts a full epoch even while a skip is pending, and after the resumed pass
    d = DATASETS.build("digits", batch_size=64)
    full = len(d.train)
    t = Trainer()
    d.set_epoch(1, skip_batches=3)
    assert t.steps_for(d.train) == full
    assert len(list(d.train)) == full - 3
    d.set_epoch(2)
    assert len(d.train) == full and t.steps_for(d.train) == full and len(list(d.train)) == full


def test_load_object_uses_the_model_file_importer(tmp_path):
    import hashlib

    from fxnas.userobj import load_object

    f = tmp_path / "mydata.py"
    f.write_text("def make():\n    return 1\n")
    fn = load_object(f"{f}:make")
    # named by a sha1 of the path (as fxnas.modelfile does), not hash(): the same in every process
    assert fn.__module__ == f"fxnas_user_mydata_{hashlib.sha1(str(f.resolve()).encode()).hexdigest()[:8]}"
    (tmp_path / "broken.py").write_text("import fxnas_no_such_module_xyz\n")
    with pytest.raises(ConfigError, match="importing .*broken.py.* failed: ModuleNotFoundError"):
        load_object(f"{tmp_path / 'broken.py'}:make")
    with pytest.raises(ConfigError, match="does not exist"):
        load_object(f"{tmp_path / 'missing.py'}:make")


def test_fixed_batches_keeps_every_global_rng_including_cuda(monkeypatch):
    import random

    from fxnas import rng
    from fxnas.train import fixed_batches

    cuda = {"state": [torch.tensor([1, 2, 3], dtype=torch.uint8)], "set": []}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # no GPU here: a stand-in CUDA generator
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [t.clone() for t in cuda["state"]])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda s: cuda["set"].append(s))
    assert "cuda" in rng.rng_state()  # available but not initialised yet: its state is still captured
    d = DATASETS.build("digits", batch_size=16)
    py, npy, tch = random.getstate(), np.random.get_state(), torch.get_rng_state()
    fixed_batches(d.train, 2)
    assert random.getstate() == py and torch.equal(torch.get_rng_state(), tch)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), npy))
    assert len(cuda["set"]) == 1 and torch.equal(cuda["set"][0][0], cuda["state"][0])  # CUDA state put back
