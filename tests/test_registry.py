"""Registry: names, regex families, and unknown names that raise with the closest valid ones."""

from __future__ import annotations

import pytest

import fxnas
from fxnas.candidates import CANDIDATES
from fxnas.errors import RegistryError
from fxnas.mixed import MIXED_OPS
from fxnas.registry import Registry


def test_register_get_and_decorator() -> None:
    reg = Registry("widget")

    @reg.register()
    def alpha() -> int:
        return 1

    reg.register("beta", obj=2)
    assert reg.get("alpha") is alpha and reg.get("beta") == 2
    assert "alpha" in reg and "gamma" not in reg and 3 not in reg
    assert list(reg) == ["alpha", "beta"]
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("beta", obj=3)
    reg.register("beta", obj=2)  # the same object again is fine


def test_family_and_unknown_names() -> None:
    reg = Registry("op")
    reg.register_family(r"K(\d+)", "K3")(lambda k: int(k) * 10)
    assert reg.get("K7") == 70 and "K7" in reg and "K" not in reg
    assert reg.names() == ["K3"]
    with pytest.raises(RegistryError) as ei:
        reg.get("K3x")
    assert "unknown op 'K3x'" in str(ei.value) and "did you mean K3" in str(ei.value)
    assert isinstance(ei.value, KeyError) and isinstance(ei.value, fxnas.FxnasError)
    assert not str(ei.value).startswith("'")  # readable, not KeyError's quoting


def test_builtin_registries() -> None:
    for name in ("NC3", "NC5", "NC7", "DW3", "DW5", "DW7", "MB3E1", "MB5E3", "MB7E6", "IDT", "NIL", "ORIG"):
        assert name in CANDIDATES, name
    assert {"Index", "SoftmaxSum"} <= set(MIXED_OPS.names())
    for name in ("conv3x3", "conv5x5", "conv", "dwconv", "pwconv", "linear", "resnet_block", "inverted_residual"):
        assert name in fxnas.PATTERNS, name
    with pytest.raises(RegistryError, match="did you mean MB3E6"):
        CANDIDATES.get("MB3E")
