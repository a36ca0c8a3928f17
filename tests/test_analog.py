"""The analog in-memory computing plugin: tile mapping and counts, the device models, the
presets, bad input, and that it comes in through entry points alone."""

from __future__ import annotations

import math
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch

from nonvon.conformance import digits_task
from nonvon.energy_models import price
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.registry import registry
from nonvon.simulators.analog import PRESET_DIR, TileMap, devices, split_sizes
from nonvon.simulators.analog.crossbar import quantize_symmetric

ROOT = Path(__file__).resolve().parents[1]
HERMES_TOPS_PER_W = 9.76   # Le Gallo et al., Nature Electronics 2023, abstract (8-bit I/O, one-phase)
HERMES_TOPS = 63.1
FULL_MVM_OPS = 2 * 256 * 256


# -- mapping and counts ------------------------------------------------------------------
@pytest.mark.parametrize("size,cap,want", [(784, 256, [196] * 4), (512, 256, [256, 256]),
                                            (10, 256, [10]), (257, 256, [129, 128])])
def test_split_sizes_is_the_fewest_near_equal_parts(size, cap, want):
    assert split_sizes(size, cap) == want


def test_tile_map_counts_a_784x512_layer_on_256x256_tiles():
    m = TileMap(784, 512, 256, 256)
    assert m.n_tiles == 8
    assert m.counts() == {"tile_mvm": 8, "dac": 784 * 2, "adc": 512 * 4, "accumulate": 512 * 3,
                          "outputs": 512}


@pytest.fixture(scope="module")
def fitted():
    """A 64-48-10 network on 32x32 tiles, its state made up (no training: the counts and the
    device models do not depend on how the weights were found)."""
    task = digits_task()
    gen = torch.Generator().manual_seed(0)
    state = {"program_seed": torch.tensor([0])}
    for i, (a, b) in enumerate([(64, 48), (48, 10)]):
        state |= {f"layer{i}.weight": torch.randn(b, a, generator=gen) / a**0.5,
                  f"layer{i}.bias": torch.zeros(b), f"layer{i}.input_range": torch.ones(2)}
    sim = registry().simulator("analog-pcm", hidden=(48,), tile_rows=32, tile_cols=32)
    return sim.load_state_tensors(state, task), task


def test_the_ledger_is_every_tile_of_every_layer_once_per_input(fitted):
    sim, task = fitted
    r = sim.evaluate(task, limit=50)
    per = r.ledger.per_inference()
    maps = [TileMap(64, 48, 32, 32), TileMap(48, 10, 32, 32)]
    assert per["aimc_tile_mvm"] == sum(m.n_tiles for m in maps) == 2 * 2 + 2 * 1
    assert per["aimc_dac_conversion"] == 64 * 2 + 48 * 1
    assert per["aimc_adc_conversion"] == 48 * 2 + 10 * 2
    assert per["aimc_layer_pass"] == 2
    assert per["add_int32"] == (48 + 48) + (10 + 10)  # across slices + bias
    assert per["host_transfer_byte"] == 64 + 1
    assert r.ledger.totals["aimc_tile_mvm"] == 50 * 6


def test_a_cnn_counts_one_mvm_per_output_position():
    task = digits_task()
    sim = registry().simulator("analog-pcm-cnn", channels=(4, 8), dense=32, kernel=3, tile_rows=32,
                               tile_cols=32)
    gen = torch.Generator().manual_seed(0)
    sizes = [(9, 4, 1), (36, 8, 2), (32, 32, 1), (32, 10, 1)]  # (in, out, row slices)
    state = {"program_seed": torch.tensor([0])}
    for i, (a, b, ns) in enumerate(sizes):
        state |= {f"layer{i}.weight": torch.randn(b, a, generator=gen) / a**0.5,
                  f"layer{i}.bias": torch.zeros(b), f"layer{i}.input_range": torch.ones(ns)}
    per = sim.load_state_tensors(state, task).evaluate(task, limit=20).ledger.per_inference()
    # conv1: 8x8 positions on 1 tile; conv2: 4x4 positions on 2 tiles (36 rows in 2 slices)
    assert per["aimc_tile_mvm"] == 64 * 1 + 16 * 2 + 1 + 1
    assert per["aimc_layer_pass"] == 64 + 16 + 1 + 1
    assert per["aimc_dac_conversion"] == 64 * 9 + 16 * 36 + 32 + 32
    assert per["aimc_adc_conversion"] == 64 * 4 + 16 * 8 * 2 + 32 + 10
    # ReLU on each conv output, 3 compares per pooled output, ReLU and argmax of the dense layers
    assert per["cmp_int8"] == (64 * 4 + 3 * 16 * 4) + (16 * 8 + 3 * 4 * 8) + 32 + 9
    assert per["host_transfer_byte"] == 64 + 1


def test_noise_free_reading_is_deterministic_and_drift_changes_the_weights(fitted):
    sim, _ = fitted
    w_ideal, _ = sim.read_weights(None)
    w_year, gdc = sim.read_weights(365 * 86400.0)
    w_again, _ = sim.read_weights(365 * 86400.0)
    assert all(torch.equal(a, b) for la, lb in zip(w_year, w_again, strict=True)
               for a, b in zip(la, lb, strict=True))
    # PCM conductances decay, so the drift compensation scales the outputs up
    assert all(f > 1.0 for layer in gdc for f in layer)
    assert sum(float(w.abs().sum()) for la in w_year for w in la) < sum(
        float(w.abs().sum()) for la in w_ideal for w in la)


def test_quantize_symmetric_has_2b_minus_1_levels_and_clips():
    x = torch.linspace(-2, 2, 10001)
    q = quantize_symmetric(x, 1.0, 3)
    assert sorted(set(q.tolist())) == pytest.approx([i / 3 for i in range(-3, 4)])
    assert float(q.max()) == 1.0 and float(q.min()) == -1.0


# -- device models -------------------------------------------------------------------------
def test_pcm_programming_noise_follows_the_fitted_polynomial():
    g = torch.full((200_000,), 12.5, dtype=torch.float64)
    out = devices.pcm_program(g, torch.Generator().manual_seed(0))
    c0, c1, c2 = devices.PCM.prog_coeff
    assert float(out.std()) == pytest.approx(c0 + c1 * 0.5 + c2 * 0.25, rel=0.02)


def test_pcm_drift_is_a_power_law_from_the_first_read():
    g = torch.full((5,), 20.0, dtype=torch.float64)
    nu = torch.tensor([0.0, 0.02, 0.05, 0.08, 0.1], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    t = 3600.0
    out = devices.pcm_at_time(g, nu, t, gen, read_scale=0.0)
    want = g * ((t + devices.PCM_T0_S) / devices.PCM_T0_S) ** (-nu)
    assert torch.allclose(out, want)
    assert bool((out[1:] < out[:-1]).all())  # faster drift, lower conductance


def test_pcm_drift_exponents_are_larger_for_low_conductances_on_average():
    gen = torch.Generator().manual_seed(0)
    lo = devices.pcm_drift_coefficients(torch.full((20_000,), 2.5, dtype=torch.float64), gen)
    hi = devices.pcm_drift_coefficients(torch.full((20_000,), 25.0, dtype=torch.float64), gen)
    assert float(lo.mean()) > float(hi.mean()) > 0


def test_rram_spread_is_the_fit_at_fitted_times_interpolated_between_held_beyond():
    g = torch.tensor([4.0, 20.0, 36.0], dtype=torch.float64)
    for t, coeff in devices.RRAM_FITS.items():
        assert torch.allclose(devices.rram_sigma(g, t), devices._poly(coeff, g / 40.0))
    mid = devices.rram_sigma(g, math.sqrt(1.0 * 86400.0))  # halfway in log time
    assert torch.allclose(mid, 0.5 * devices.rram_sigma(g, 1.0) + 0.5 * devices.rram_sigma(g, 86400.0))
    assert torch.allclose(devices.rram_sigma(g, 3e7), devices.rram_sigma(g, 172800.0))
    assert torch.allclose(devices.rram_sigma(g, 0.0), devices.rram_sigma(g, 1.0))


def test_conductance_levels_round_to_equally_spaced_values():
    g = torch.linspace(0, 25, 1001, dtype=torch.float64)
    q = devices.quantize_levels(g, 25.0, 5)
    assert sorted(set(q.tolist())) == [0.0, 6.25, 12.5, 18.75, 25.0]
    assert devices.quantize_levels(g, 25.0, 0) is g


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize("sim,overrides,match", [
    ("analog-pcm", {"t_inference_s": -1.0}, "t_inference_s=-1.0 must be a finite number >= 0"),
    ("analog-pcm", {"adc_bits": 10}, r"adc_bits=10 is outside what the HERMES PCM chip supports \(\[1, 8\]"),
    ("analog-rram", {"dac_bits": 12}, r"dac_bits=12 is outside what the NeuRRAM chip supports"),
    ("analog-pcm", {"adc_bits": 1}, r"adc_bits=1 must be an integer in \[2, 16\]"),
    ("analog-pcm", {"device_type": "rram"}, "analog-rram"),
])
def test_bad_options_are_refused_with_the_value_and_the_limit(sim, overrides, match):
    with pytest.raises(ConfigError, match=match):
        registry().simulator(sim, **overrides)


def test_a_network_too_large_for_the_chip_is_refused_before_training():
    sim = registry().simulator("analog-pcm", hidden=(48,), tile_rows=32, tile_cols=32, max_tiles=5)
    with pytest.raises(IncompatibleError, match=r"needs 6 tiles of 32x32 .* max_tiles=5") as err:
        sim.fit(digits_task())
    assert "max_tiles" in err.value.hint and sim.layers is None


# -- presets -------------------------------------------------------------------------------
def test_the_presets_are_registered_by_the_plugins_own_entry_point():
    eps = {ep.name: ep.value for ep in entry_points(group="nonvon.presets")}
    assert eps["analog"] == "nonvon.simulators.analog:PRESET_DIR"
    reg = registry()
    kinds = reg.simulators["analog-pcm"].op_kinds
    assert {p.name for p in reg.presets_for("analog", kinds)} == {"hermes-pcm", "neurram-rram"}
    assert {f.stem for f in PRESET_DIR.glob("*.toml")} == {"hermes-pcm", "neurram-rram"}


@pytest.mark.parametrize("name", ["hermes-pcm", "neurram-rram"])
def test_preset_is_sourced_bounded_and_at_the_chip_boundary(name):
    p = registry().preset(name)
    assert p.boundary == "chip" and not p.bound and p.paradigms == ("analog",)
    for kind, op in p.ops.items():
        assert op.source.strip() and 0 <= op.low <= op.value <= op.high, kind
    assert "static" in p.absent and len(p.absent["static"]) > 40


def test_hermes_full_tile_sums_to_the_measured_mvm_energy_and_time():
    p = registry().preset("hermes-pcm")
    full = p.ops["aimc_tile_mvm"].value + 256 * (p.ops["aimc_dac_conversion"].value +
                                                 p.ops["aimc_adc_conversion"].value)
    assert full == pytest.approx(FULL_MVM_OPS / (HERMES_TOPS_PER_W * 1e12) * 1e12, rel=1e-4)
    assert p.ops["aimc_layer_pass"].time_s == pytest.approx(64 * FULL_MVM_OPS / (HERMES_TOPS * 1e12),
                                                            rel=3e-3)


def test_pricing_the_ledger_charges_every_class_but_static(fitted):
    sim, task = fitted
    r = sim.evaluate(task, limit=20)
    rep = price(r.ledger, registry().preset("hermes-pcm"))
    by = rep.energy_by_class_j
    assert all(by[c] > 0 for c in ("compute", "memory", "interconnect", "io")) and by["static"] == 0
    assert rep.latency_s == pytest.approx(2 * 1.33e-7)


# -- a plugin: the core never names it ----------------------------------------------------
def test_the_core_never_names_the_analog_plugin():
    hits = [str(p.relative_to(ROOT)) for d in ("nonvon", "energy_models") for p in (ROOT / d).rglob("*.py")
            if "simulators.analog" in p.read_text(encoding="utf-8")
            or "hermes-pcm" in p.read_text(encoding="utf-8")]
    assert not hits
    assert registry().paradigms["analog"].headline_presets == ("hermes-pcm", "neurram-rram")
