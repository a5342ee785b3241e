"""rng.set_threads: the torch thread count a run fixes, checked."""

from __future__ import annotations

import pytest
import torch

from fxnas.errors import ConfigError
from fxnas.rng import set_threads


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_set_threads_sets_torchs_count(keep_threads):
    set_threads(2)
    assert torch.get_num_threads() == 2
    set_threads(1)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_threads_rejects_what_is_not_a_positive_integer(bad, keep_threads):
    before = torch.get_num_threads()
    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        set_threads(bad)
    assert torch.get_num_threads() == before
