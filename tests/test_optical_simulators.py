"""Optical simulators: each non-ideality alone, counting, detection statistics, presets, bad input."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from nonvon.energy_models import load_preset, price
from nonvon.energy_models.presets import PRESET_DIR
from nonvon.errors import ConfigError
from nonvon.models.diffractive import DiffractiveGeometry
from nonvon.models.mzi import HybridMZINetwork
from nonvon.simulators.optical import Chip, DiffractiveConfig, DiffractiveOnn, MziConfig, MziOnn
from nonvon.simulators.optical.common import (
    crosstalk,
    homodyne_detect,
    photon_energy_j,
    quantize_phase,
    quantize_signed,
)

IDEAL = {"shot_noise": False, "dac_bits": None, "adc_bits": None}


# -- pure pieces ---------------------------------------------------------------------------------
def test_photon_energy():
    assert photon_energy_j(1550e-9) == pytest.approx(1.2816e-19, rel=1e-4)


def test_quantizers():
    x = torch.linspace(-2, 2, 101, dtype=torch.float64)
    q = quantize_signed(x, 3, 1.0)
    assert q.abs().max() == 1.0 and len(torch.unique(q)) == 7  # 2 * (2^2 - 1) + 1 levels
    assert torch.equal(quantize_signed(x, None, 1.0), x.clamp(-1, 1))
    p = torch.linspace(-10, 10, 1001, dtype=torch.float64)
    assert len(torch.unique(quantize_phase(p, 3))) == 8
    held = quantize_phase(p, None)
    assert held.min() >= 0 and held.max() < 2 * math.pi


def test_crosstalk_is_nearest_neighbour_linear():
    p = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    nb = np.array([[-1, 1], [0, 2], [1, -1]])
    torch.testing.assert_close(crosstalk(p, nb, 0.1), torch.tensor([1.2, 2.4, 3.2], dtype=torch.float64))
    assert crosstalk(p, nb, 0.0) is p


def test_homodyne_shot_noise_statistics():
    """Unbiased for Re(beta), with variance (g^2 + |beta|^2) / (4 g^2) (balanced detection)."""
    beta = torch.full((200_000,), 3.0 + 4.0j, dtype=torch.complex128)
    gen = torch.Generator().manual_seed(0)
    est, det = homodyne_detect(beta, 100.0, generator=gen, shot_noise=True)
    assert est.mean().item() == pytest.approx(3.0, abs=0.01)
    assert est.var().item() == pytest.approx((100 + 25) / 400, rel=0.02)
    assert det[0].item() == pytest.approx(125.0)
    exact, _ = homodyne_detect(beta, 100.0, generator=gen, shot_noise=False)
    assert torch.equal(exact, beta.real)


# -- the MZI chip: every non-ideality alone --------------------------------------------------------
@pytest.fixture(scope="module")
def small_net() -> HybridMZINetwork:
    torch.manual_seed(0)
    return HybridMZINetwork((6, 8, 4)).double()


def _w(net, **kw) -> list[torch.Tensor]:
    return [layer.w for layer in Chip(net, MziConfig(**{**IDEAL, **kw})).layers]


def test_ideal_chip_is_the_trained_network(small_net):
    for chip_w, layer in zip(_w(small_net), small_net.layers, strict=True):
        torch.testing.assert_close(chip_w, layer.matrix().detach().to(torch.complex128), atol=1e-12, rtol=0)


@pytest.mark.parametrize("option", [
    {"phase_bits": 4}, {"phase_noise_rad": 0.05}, {"splitter_imbalance_rad": 0.05}, {"mzi_loss_db": 0.2},
    {"coupling_loss_db": 3.0}, {"thermal_crosstalk": 0.02}])
def test_each_chip_nonideality_alone_changes_the_matrix(small_net, option):
    ideal, bad = _w(small_net), _w(small_net, **option)
    assert max(float((a - b).abs().max()) for a, b in zip(ideal, bad, strict=True)) > 1e-4
    if "loss" in next(iter(option)):  # losses only remove light
        for a, b in zip(ideal, bad, strict=True):
            assert float(torch.linalg.matrix_norm(b, 2)) < float(torch.linalg.matrix_norm(a, 2))


def test_static_errors_depend_on_the_chip_seed_only(small_net):
    a = _w(small_net, phase_noise_rad=0.05, chip_seed=1)
    b = _w(small_net, phase_noise_rad=0.05, chip_seed=1)
    c = _w(small_net, phase_noise_rad=0.05, chip_seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not torch.equal(x, y) for x, y in zip(a, c, strict=True))


# -- the simulator on a small task ----------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted_mzi(digits_task):
    return MziOnn(**MziOnn.quick).fit(digits_task, seed=0)


def test_counts_follow_what_ran(fitted_mzi, digits_task):
    sim = fitted_mzi.with_config(**IDEAL)
    r = sim.evaluate(digits_task, limit=50)
    per = r.ledger.per_inference()
    sizes = sim.net.sizes
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    assert per["optical_pass"] == len(sizes) - 1
    assert per["dac_sample"] == per["modulator_symbol"] == sum(sizes[:-1])
    assert per["adc_sample"] == per["photodetector_read"] == sum(sizes[1:])
    assert per["mac_int8"] == 64 * sizes[0]  # the PCA front end (64 pixels -> 16)
    c = sim.config
    laser_j = c.photons_per_mac * (1 + c.lo_ratio) * macs * photon_energy_j(c.wavelength_nm * 1e-9)
    assert per["laser_optical_zj"] * 1e-21 == pytest.approx(laser_j, rel=1e-3)
    hold = sum(Chip(sim.net.double(), c).layers[i].hold_pi for i in range(len(sizes) - 1))
    sim.net.float()
    assert per["phase_shifter_hold"] == pytest.approx(hold, abs=0.5)
    assert sim.last_stats["macs_per_inference"] == macs


def test_shot_noise_at_a_starved_budget_costs_accuracy(fitted_mzi, digits_task):
    clean = fitted_mzi.with_config(**IDEAL).evaluate(digits_task).accuracy
    starved = fitted_mzi.with_config(shot_noise=True, photons_per_mac=1e-4).evaluate(digits_task).accuracy
    assert clean > 0.6 and starved < clean - 0.15


def test_loss_reduces_detected_photons(fitted_mzi, digits_task):
    a = fitted_mzi.with_config(**IDEAL)
    a.evaluate(digits_task, limit=50)
    b = fitted_mzi.with_config(**IDEAL, coupling_loss_db=3.0)
    b.evaluate(digits_task, limit=50)
    ratio = b.last_stats["detected_signal_photons_per_mac"] / a.last_stats["detected_signal_photons_per_mac"]
    assert ratio == pytest.approx(10 ** -0.3, rel=1e-6)


def test_save_load_round_trip(fitted_mzi, digits_task, tmp_path):
    path = tmp_path / "m.safetensors"
    fitted_mzi.save(path)
    again = MziOnn.load(path)
    r1, r2 = fitted_mzi.evaluate(digits_task), again.evaluate(digits_task)
    assert r1.accuracy == r2.accuracy and dict(r1.ledger.totals) == dict(r2.ledger.totals)


def test_with_config_keeps_the_network_fixed(fitted_mzi):
    with pytest.raises(ConfigError, match="define the trained network"):
        fitted_mzi.with_config(hidden=(8,))


def test_clements_and_reck_program_the_same_layer():
    """The same weight through either arrangement gives the same ideal chip matrix."""
    torch.manual_seed(1)
    w = torch.randn(5, 7, dtype=torch.float64)
    mats = []
    for arr in ("clements", "reck"):
        net = HybridMZINetwork((7, 5), arr).double()
        net.layers[0].set_matrix(w)
        mats.append(Chip(net, MziConfig(arrangement=arr, **IDEAL)).layers[0].w)
    torch.testing.assert_close(mats[0], mats[1], atol=1e-9, rtol=0)


# -- diffractive ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted_d2nn(digits_task):
    return DiffractiveOnn(**DiffractiveOnn.quick).fit(digits_task, seed=0)


def test_diffractive_counts_and_noise(fitted_d2nn, digits_task):
    sim = fitted_d2nn.with_config(**IDEAL)
    r = sim.evaluate(digits_task)
    per = r.ledger.per_inference()
    assert "phase_shifter_hold" not in per  # passive layers
    assert per["photodetector_read"] == per["adc_sample"] == 10 and per["optical_pass"] == 1
    assert per["dac_sample"] == sim.net.input_px ** 2
    starved = fitted_d2nn.with_config(shot_noise=True, photons_per_inference=3.0).evaluate(digits_task)
    assert starved.accuracy < r.accuracy - 0.15
    coarse = fitted_d2nn.with_config(**IDEAL, phase_bits=1).evaluate(digits_task)
    assert coarse.accuracy < r.accuracy


# -- presets ------------------------------------------------------------------------------------------
def test_photonic_presets_price_every_optical_kind():
    kinds = MziOnn().op_kinds | DiffractiveOnn().op_kinds
    for name in ("photonic-mzi", "photonic-limit"):
        p = load_preset(PRESET_DIR / f"{name}.toml")
        assert p.paradigms == ("optical",) and not p.can_price(kinds)


def test_photonic_limit_is_the_optical_energy(fitted_mzi, digits_task):
    r = fitted_mzi.evaluate(digits_task, limit=20)
    limit = price(r.ledger, load_preset(PRESET_DIR / "photonic-limit.toml"))
    assert limit.energy_j == pytest.approx(r.ledger.per_inference()["laser_optical_zj"] * 1e-21, rel=1e-12)
    real = price(r.ledger, load_preset(PRESET_DIR / "photonic-mzi.toml"))
    assert real.breakdown_j["laser_optical_zj"] == pytest.approx(4 * limit.energy_j, rel=1e-12)  # WPE 0.25
    assert real.latency_s == pytest.approx(1e-10 * r.ledger.per_inference()["optical_pass"])


# -- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, match", [
    ({"mzi_loss_db": -0.1}, "mzi_loss_db"), ({"coupling_loss_db": -1.0}, "coupling_loss_db"),
    ({"wavelength_nm": 0.0}, "wavelength_nm"), ({"wavelength_nm": -1550.0}, "wavelength_nm"),
    ({"photons_per_mac": 0.0}, "photons_per_mac"), ({"photons_per_mac": -3.0}, "photons_per_mac"),
    ({"phase_bits": 0}, "phase_bits"), ({"dac_bits": 0}, "dac_bits"), ({"adc_bits": 1.5}, "adc_bits"),
    ({"arrangement": "triangle"}, "arrangement"), ({"thermal_crosstalk": 0.7}, "thermal_crosstalk"),
    ({"hidden": (0,)}, "hidden"), ({"phase_noise_rad": float("nan")}, "phase_noise_rad"),
    ({"n_inputs": 0}, "n_inputs"), ({"init": "random"}, "init"), ({"finetune_epochs": -1}, "finetune_epochs"),
    ({"dropout": 1.0}, "dropout")])
def test_mzi_config_rejects_bad_values(option, match):
    with pytest.raises(ConfigError, match=match):
        MziOnn(**option)


@pytest.mark.parametrize("option, match", [
    ({"frequency_hz": 0.0}, "frequency_hz"), ({"pitch_um": -4.0}, "pitch_um"),
    ({"layer_loss_db": -0.5}, "layer_loss_db"), ({"photons_per_inference": 0.0}, "photons_per_inference"),
    ({"phase_bits": 0}, "phase_bits"), ({"n_layers": 0}, "n_layers"), ({"device": "tpu"}, "device")])
def test_diffractive_config_rejects_bad_values(option, match):
    with pytest.raises(ConfigError, match=match):
        DiffractiveOnn(**option)


def test_sizes_that_do_not_fit_are_refused(digits_task):
    sim = MziOnn(input_reduction="none", n_inputs=16, hidden=(8,))
    from nonvon.errors import IncompatibleError

    with pytest.raises(IncompatibleError, match="16 input features"):
        sim.fit(digits_task)
    assert dataclasses.asdict(DiffractiveConfig())["n_pixels"] == DiffractiveGeometry.from_pixels(
        frequency_hz=0.4e12, n_pixels=200, pitch_m=4e-4, spacing_m=0.03, n_layers=5).n_pixels
