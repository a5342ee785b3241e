"""Offline datasets as DataBundles (train/valid/test loaders + input shape + classes), built by name.

Every train loader draws its order from an EpochSampler (fxnas.train.sampling), so data order is fixed
by (seed, epoch) and a resumed run replays it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from ..errors import ConfigError, missing_file
from ..options import FilePath
from ..registry import Registry
from ..userobj import resolve_callable
from .sampling import EpochSampler, epoch_batches, fixed_batches, set_epoch  # noqa: F401  (re-exported)

DATASETS = Registry("dataset")


@dataclass
class DataBundle:
    """The data of an experiment: loaders, the input shape (batch 1) and the number of classes/outputs."""

    train: DataLoader
    valid: DataLoader
    test: DataLoader | None
    input_shape: tuple
    num_classes: int
    # the held-out batches of arch steps when they differ from ``valid`` (a data-parallel rank's shard of it)
    arch_valid: DataLoader | None = None

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Fix the train order to that of ``epoch`` (see the module docstring)."""
        set_epoch(self.train, epoch, skip_batches)

    def arch_split(self) -> DataLoader:
        """The loader the arch steps of one-shot search draw held-out batches from (default: ``valid``)."""
        return self.valid if self.arch_valid is None else self.arch_valid

    def split(self, name: str) -> DataLoader:
        """The loader of split ``name`` (train, valid or test); ConfigError when the data has none."""
        loader = getattr(self, name, None) if name in ("train", "valid", "test") else None
        if loader is None:
            raise ConfigError(f"the data has no {name!r} split; splits: "
                              f"{', '.join(n for n in ('train', 'valid', 'test') if getattr(self, n) is not None)}")
        return loader

    def example_input(self) -> torch.Tensor:
        """A random tensor of ``input_shape``, for tracing."""
        return torch.randn(*self.input_shape)


def make_loaders(train: Dataset, valid: Dataset, test: Dataset | None, batch_size: int, seed: int,
                 eval_batch_size: int | None = None, num_workers: int = 0) -> tuple:
    """(train, valid, test) DataLoaders: train shuffled by an EpochSampler, the others in order."""
    ebs = eval_batch_size or max(batch_size, 256)
    tr = DataLoader(train, batch_size=batch_size, sampler=EpochSampler(len(train), seed), num_workers=num_workers)
    va = DataLoader(valid, batch_size=ebs, shuffle=False, num_workers=num_workers)
    te = DataLoader(test, batch_size=ebs, shuffle=False, num_workers=num_workers) if test is not None else None
    return tr, va, te


def split_indices(n: int, valid_fraction: float, test_fraction: float, seed: int) -> tuple:
    """A seeded random split of ``range(n)`` into (train, valid, test) index tensors."""
    for name, f in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {f}")
    n_valid, n_test = int(round(n * valid_fraction)), int(round(n * test_fraction))
    if n_valid < 1 or n - n_valid - n_test < 1:
        raise ConfigError(f"cannot split {n} samples with valid_fraction={valid_fraction}, "
                          f"test_fraction={test_fraction}: train and valid each need at least one sample")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_valid + n_test:], perm[:n_valid], perm[n_valid:n_valid + n_test]


# --- digits -------------------------------------------------------------------------------------------------
@DATASETS.register("digits")
def digits(size: int = 8, channels: int = 1, batch_size: int = 64, valid_fraction: float = 0.2,
           test_fraction: float = 0.2, seed: int = 0, eval_batch_size: int | None = None) -> DataBundle:
    """sklearn's 1,797 8x8 digit images (no download), upsampled to ``size``, normalised by train statistics."""
    from sklearn.datasets import load_digits

    if size not in (8, 16, 32):
        raise ConfigError(f"digits size must be 8, 16 or 32, got {size}")
    if channels not in (1, 3):
        raise ConfigError(f"digits channels must be 1 or 3, got {channels}")
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.tensor(d.target, dtype=torch.long)
    tr, va, te = split_indices(len(y), valid_fraction, test_fraction, seed)
    mean, std = x[tr].mean(), x[tr].std()  # train statistics only: valid/test stay unseen
    x = ((x - mean) / std).repeat(1, channels, 1, 1).contiguous()
    sets = [TensorDataset(x[i], y[i]) for i in (tr, va)]
    test = TensorDataset(x[te], y[te]) if len(te) else None
    loaders = make_loaders(sets[0], sets[1], test, batch_size, seed, eval_batch_size)
    return DataBundle(*loaders, input_shape=(1, channels, size, size), num_classes=10)


# --- tensors ------------------------------------------------------------------------------------------------
@DATASETS.register("tensors")
def tensors(path: FilePath, batch_size: int = 64, valid_fraction: float = 0.2, test_fraction: float = 0.0,
            seed: int = 0, normalize: bool = True, task: str = "auto",
            eval_batch_size: int | None = None) -> DataBundle:
    """X, y from a ``.pt`` file (a dict with keys X and y, or a tuple); tabular or 1-D data.

    ``task``: ``classification`` (integer y; num_classes = max + 1), ``regression`` (float y; num_classes =
    outputs per sample) or ``auto`` (by y's dtype). ``normalize`` standardises X per feature by train stats.
    """
    if not os.path.exists(path):
        raise missing_file("tensors file", path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a text file, a truncated file, a pickle holding code...
        raise ConfigError(f"tensors file {path!r} is not a torch file of tensors (torch.load(weights_only=True) "
                          f"failed: {type(exc).__name__}); save one with torch.save({{'X': X, 'y': y}}, path)"
                          ) from None
    if isinstance(obj, dict):
        if "X" not in obj or "y" not in obj:
            raise ConfigError(f"{path}: the dict needs keys 'X' and 'y', has {sorted(obj)}")
        x, y = obj["X"], obj["y"]
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        x, y = obj
    else:
        raise ConfigError(f"{path} must hold {{'X': tensor, 'y': tensor}} or (X, y), got {type(obj).__name__}")
    x, y = torch.as_tensor(x).float(), torch.as_tensor(y)
    if len(x) != len(y):
        raise ConfigError(f"{path}: X has {len(x)} rows but y has {len(y)}")
    if task == "auto":
        task = "regression" if y.is_floating_point() else "classification"
    if task == "classification":
        y = y.long()
        num_classes = int(y.max()) + 1
    elif task == "regression":
        y = y.float()
        num_classes = 1 if y.dim() == 1 else int(y[0].numel())
    else:
        raise ConfigError(f"task must be 'auto', 'classification' or 'regression', got {task!r}")
    tr, va, te = split_indices(len(y), valid_fraction, test_fraction, seed)
    if normalize:
        mean, std = x[tr].mean(0, keepdim=True), x[tr].std(0, keepdim=True).clamp_min(1e-8)
        x = (x - mean) / std
    test = TensorDataset(x[te], y[te]) if len(te) else None
    loaders = make_loaders(TensorDataset(x[tr], y[tr]), TensorDataset(x[va], y[va]), test, batch_size, seed,
                           eval_batch_size)
    return DataBundle(*loaders, input_shape=(1, *x.shape[1:]), num_classes=num_classes)


# --- image folders ------------------------------------------------------------------------------------------
def _find_split(root: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


@DATASETS.register("image_folder")
def image_folder(root: FilePath, size: int = 32, channels: int = 3, batch_size: int = 64, valid_fraction: float = 0.2,
                 seed: int = 0, augment: bool = False, mean: float | list[float] = 0.5,
                 std: float | list[float] = 0.5, eval_batch_size: int | None = None,
                 num_workers: int = 0) -> DataBundle:
    """Images in class folders (torchvision ImageFolder), resized to ``size``.

    ``root`` holds either ``train/`` (+ ``valid/`` or ``val/``, + optional ``test/``) or the class folders
    directly, in which case ``valid_fraction`` of them is held out by a seeded split.
    """
    from torchvision import datasets, transforms

    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"image_folder root {root!r} is not a directory")
    if channels not in (1, 3):
        raise ConfigError(f"image_folder channels must be 1 or 3, got {channels}")
    m = [mean] * channels if isinstance(mean, (int, float)) else list(mean)
    s = [std] * channels if isinstance(std, (int, float)) else list(std)
    common = [transforms.Resize((size, size))]
    if channels == 1:
        common.append(transforms.Grayscale(1))
    tail = [transforms.ToTensor(), transforms.Normalize(m, s)]
    aug = [transforms.RandomCrop(size, padding=size // 8), transforms.RandomHorizontalFlip()] if augment else []
    t_train = transforms.Compose(common + aug + tail)
    t_eval = transforms.Compose(common + tail)

    train_dir = _find_split(base, ("train",))
    valid_dir = _find_split(base, ("valid", "val"))
    test_dir = _find_split(base, ("test",))
    try:
        if train_dir is not None and valid_dir is not None:
            train = datasets.ImageFolder(str(train_dir), transform=t_train)
            valid = datasets.ImageFolder(str(valid_dir), transform=t_eval)
            if valid.classes != train.classes:
                raise ConfigError(f"{valid_dir} has classes {valid.classes}, {train_dir} has {train.classes}")
        else:
            src = str(train_dir or base)
            full_t, full_e = datasets.ImageFolder(src, transform=t_train), datasets.ImageFolder(src, transform=t_eval)
            tr, va, _ = split_indices(len(full_t), valid_fraction, 0.0, seed)
            train, valid = Subset(full_t, tr.tolist()), Subset(full_e, va.tolist())
            train.classes = full_t.classes  # type: ignore[attr-defined]
        test = datasets.ImageFolder(str(test_dir), transform=t_eval) if test_dir is not None else None
    except (FileNotFoundError, RuntimeError) as e:
        raise ConfigError(f"image_folder {root!r}: {e}") from None
    loaders = make_loaders(train, valid, test, batch_size, seed, eval_batch_size, num_workers)
    return DataBundle(*loaders, input_shape=(1, channels, size, size), num_classes=len(train.classes))


# --- user python ----------------------------------------------------------------------------------------------
@DATASETS.register("python")
def python(fn: str | Callable[..., DataBundle], **options: Any) -> DataBundle:
    """A user function (``file.py:fn`` or a callable) called with the remaining options; returns a DataBundle."""
    func = resolve_callable(fn)
    assert func is not None
    out = func(**options)
    if not isinstance(out, DataBundle):
        raise ConfigError(f"data function {fn!r} returned {type(out).__name__}; it must return "
                          f"fxnas.train.DataBundle(train, valid, test, input_shape, num_classes)")
    return out
