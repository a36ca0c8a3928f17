"""One way to validate a config (nonvon.config), applied to every registered simulator."""

from __future__ import annotations

import dataclasses
import math

import pytest

from nonvon import config as cfg
from nonvon.errors import ConfigError, UnknownNameError
from nonvon.registry import registry

REG = registry()
NON_FINITE = (math.nan, math.inf, -math.inf)


def _float_options() -> list[tuple[str, str, object]]:
    """(simulator, option, a value holding a non-finite float) for every float option."""
    out = []
    for name, cls in sorted(REG.simulators.items()):
        for f in dataclasses.fields(cls.Config):
            t = str(f.type)
            if t.startswith("float"):
                out += [(name, f.name, v) for v in NON_FINITE]
            elif t.startswith("tuple[tuple[float"):
                out.append((name, f.name, ((math.nan, 1.0),)))
            elif t.startswith("tuple[float"):
                out.append((name, f.name, (1.0, math.nan)))
    return out


FLOAT_OPTIONS = _float_options()


def test_every_simulator_has_float_options_checked():
    # guards the parametrization below against finding nothing (e.g. a change in annotations)
    assert {s for s, _, _ in FLOAT_OPTIONS} >= {"gpu-mlp", "snn-ttfs", "onn-mzi", "hdc-lowdim", "vqc"}


@pytest.mark.parametrize("sim, option, value", FLOAT_OPTIONS,
                         ids=[f"{s}.{o}={v!r}" for s, o, v in FLOAT_OPTIONS])
def test_non_finite_floats_are_refused_at_construction(sim, option, value):
    with pytest.raises(ConfigError, match=option):
        REG.simulator(sim, **{option: value})


def _variants():
    return [(n, c) for n, c in sorted(REG.simulators.items()) if getattr(c, "fixed", ())]


def test_variants_fix_their_model():
    names = {n for n, _ in _variants()}
    assert {"gpu-mlp", "gpu-cnn", "snn-mlp", "snn-cnn", "hdc-projection", "hdc-idlevel"} <= names


@pytest.mark.parametrize("name, option, value, other", [
    ("gpu-mlp", "model", "cnn", "gpu-cnn"),
    ("gpu-cnn-int8", "model", "mlp", "gpu-mlp-int8"),
    ("gpu-mlp-bf16", "dtype", "fp32", "gpu-mlp"),
    ("snn-cnn", "model", "mlp", "snn-mlp"),
    ("hdc-projection", "encoder", "idlevel", "hdc-idlevel"),
])
def test_overriding_a_fixed_option_names_the_simulator_that_has_it(name, option, value, other):
    with pytest.raises(ConfigError, match=f"{name}'s .*fixed") as e:
        REG.simulator(name, **{option: value})
    assert e.value.hint == f"use {other}"


def test_a_whole_config_of_another_model_is_refused_too():
    cls = REG.simulators["gpu-mlp"]
    with pytest.raises(ConfigError, match="use gpu-cnn"):
        cls(cls.Config(model="cnn"))
    assert cls(cls.Config(hidden=(8,))).config.hidden == (8,)  # its own model passes


def test_fixed_options_keep_the_variants_defaults():
    for name, cls in _variants():
        sim = REG.simulator(name)
        for option in cls.fixed:
            assert REG.simulator(name, **{option: getattr(sim.config, option)}).config == sim.config


@pytest.mark.parametrize("check, args", [
    (cfg.positive, ("lr", 0.0)), (cfg.positive, ("lr", True)), (cfg.positive, ("lr", "1")),
    (cfg.non_negative, ("x", -1e-9)), (cfg.fraction, ("p", 1.5)), (cfg.positive_int, ("n", 2.0)),
    (cfg.positive_int, ("n", False)),
])
def test_checks_refuse_bad_values_naming_the_option(check, args):
    with pytest.raises(ConfigError, match=f"^{args[0]}=") as e:
        check(*args, example=1)
    assert e.value.hint.startswith(f"e.g. {args[0]}=")


def test_checks_return_normalized_values():
    assert cfg.integer("k", 3, 0, 4) == 3 and cfg.fraction("p", 1.0, example=0.5) == 1.0
    assert cfg.ints("hidden", [4, 8], example="(4,)") == (4, 8)
    assert cfg.optional(cfg.positive, "t", None, example=1.0) is None
    with pytest.raises(ConfigError, match="hidden is empty"):
        cfg.ints("hidden", [], example="(4,)", nonempty=True)
    with pytest.raises(ConfigError, match="hidden entry=0") as e:
        cfg.ints("hidden", (4, 0), example="(4,)")
    assert e.value.hint == "e.g. hidden=(4,)"
    with pytest.raises(ConfigError, match="did you mean 'cuda'"):
        cfg.device("cudaa")


def test_every_readout_map_name_has_a_class():
    pytest.importorskip("jax")
    from nonvon.simulators.quantum import circuits
    from nonvon.simulators.quantum.classical import READOUT_MAPS, readout_map

    assert set(READOUT_MAPS) == set(circuits._READOUT_MAPS)
    with pytest.raises(UnknownNameError, match="did you mean .scale."):
        readout_map("scaled")
