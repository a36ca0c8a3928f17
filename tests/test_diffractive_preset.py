"""The diffractive-nir preset (issue #19 item 2): it prices exactly what onn-diffractive counts at
the chip boundary, charges the SLM frame as static time, and the network it prices is the
Lin et al. stack scaled from 0.4 THz to 850 nm, which the angular-spectrum model must leave
unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nonvon.energy_models import OpLedger, load_preset, price
from nonvon.energy_models.presets import PRESET_DIR
from nonvon.simulators.optical import DiffractiveOnn
from nonvon.simulators.optical.diffraction import SPEED_OF_LIGHT_M_S, DiffractiveGeometry, DiffractiveNetwork

NIR_M = 850e-9
THZ_HZ = 0.4e12
SCALE = NIR_M / (SPEED_OF_LIGHT_M_S / THZ_HZ)  # every length shrinks by lambda_NIR / lambda_THz
PLANCK_J_S = 6.62607015e-34


@pytest.fixture(scope="module")
def preset():
    return load_preset(PRESET_DIR / "diffractive-nir.toml")


def _geometry(wavelength_m: float, scale: float, *, scale_pitch: bool = True) -> DiffractiveGeometry:
    q = DiffractiveOnn.quick
    return DiffractiveGeometry.from_pixels(
        wavelength_m=wavelength_m, n_pixels=q["n_pixels"],
        pitch_m=q["pitch_um"] * 1e-6 * (scale if scale_pitch else 1.0),
        spacing_m=q["spacing_mm"] * 1e-3 * scale, n_layers=q["n_layers"],
        input_fraction=q["input_fraction"], detector_fraction=q["detector_fraction"])


def _scaled_config(cfg: dict) -> dict:
    return {**cfg, "frequency_hz": SPEED_OF_LIGHT_M_S / NIR_M, "pitch_um": cfg["pitch_um"] * SCALE,
            "spacing_mm": cfg["spacing_mm"] * SCALE}


def test_it_prices_exactly_what_onn_diffractive_counts_at_the_chip_boundary(preset, reg):
    assert preset.boundary == "chip" and "optical" in preset.paradigms
    assert set(preset.ops) == set(DiffractiveOnn.op_kinds)
    assert "phase_shifter_hold" not in preset.ops  # passive fabricated masks hold no phase
    assert "diffractive-nir" in {p.name for p in reg.presets_for("optical", DiffractiveOnn.op_kinds)}
    assert len(preset.absent.get("interconnect", "")) > 20 and preset.static_power_w > 0
    for kind, op in preset.ops.items():
        assert op.source.strip() and op.low <= op.value <= op.high, kind


def test_static_power_is_charged_over_one_slm_frame_and_the_host_link(preset):
    per = {"optical_pass": 1, "host_transfer_byte": 65, "photodetector_read": 10, "modulator_symbol": 144,
           "dac_conversion_step": 144 * 256, "adc_conversion_step": 10 * 256, "laser_optical_zj": 1000,
           "cmp_int32": 9, "sram_byte": 64}
    assert set(per) == set(DiffractiveOnn.op_kinds)
    rep = price(OpLedger(per, n_inferences=1, resident_bytes=64), preset)
    frame = preset.ops["optical_pass"].time_s
    assert frame == pytest.approx(1 / 60, rel=1e-3)  # a video-rate SLM frame
    assert rep.latency_s == pytest.approx(frame + 65 / 15.75e9, rel=1e-9)
    assert rep.breakdown_j["static"] == pytest.approx(preset.static_power_w * rep.latency_s, rel=1e-12)
    # the frame-bound static term dominates every counted kind (the design point's honest cost)
    assert rep.breakdown_j["static"] > 1e4 * (rep.energy_j - rep.breakdown_j["static"])


def test_the_angular_spectrum_model_is_invariant_when_every_length_scales():
    thz, nir = _geometry(SPEED_OF_LIGHT_M_S / THZ_HZ, 1.0), _geometry(NIR_M, SCALE)
    torch.manual_seed(0)
    a = DiffractiveNetwork(thz, 10)
    a.phase.data.uniform_(0, 2 * math.pi)
    b = DiffractiveNetwork(nir, 10)
    b.load_state_dict(a.state_dict())
    x = torch.rand(8, 8, 8)
    pa, pb = a.detector_power(a.fields(x)), b.detector_power(b.fields(x))
    assert torch.allclose(pa, pb, rtol=1e-5, atol=1e-9)
    # control: the same wavelength and spacing with the pitch left at 400 um is another network
    c = DiffractiveNetwork(_geometry(NIR_M, SCALE, scale_pitch=False), 10)
    c.load_state_dict(a.state_dict())
    pc = c.detector_power(c.fields(x))
    assert not torch.allclose(pa, pc, rtol=1e-2)


def test_a_thz_state_runs_unchanged_at_the_scaled_nir_geometry(digits_task):
    # the quick stack is the 850 nm one; its 0.4 THz original has every length / SCALE
    nir_cfg = {**DiffractiveOnn.quick, "photon_curve": ()}
    cfg = {**nir_cfg, "frequency_hz": THZ_HZ, "pitch_um": nir_cfg["pitch_um"] / SCALE,
           "spacing_mm": nir_cfg["spacing_mm"] / SCALE}
    n = cfg["n_pixels"]
    gen = torch.Generator().manual_seed(1)
    state = {"net.phase": 2 * math.pi * torch.rand(cfg["n_layers"], n, n, generator=gen),
             "net.log_temperature": torch.tensor(math.log(10.0)),
             "adc_fs": torch.tensor(0.05, dtype=torch.float64)}
    thz = DiffractiveOnn(**cfg).load_state_tensors(state, digits_task).evaluate(digits_task)
    scaled = _scaled_config(cfg)
    for k in ("frequency_hz", "pitch_um", "spacing_mm"):  # the default is the scaled Lin stack
        assert scaled[k] == pytest.approx(getattr(DiffractiveOnn(**nir_cfg).config, k), rel=1e-12)
    nir = DiffractiveOnn(**scaled).load_state_tensors(state, digits_task).evaluate(digits_task)
    assert nir.accuracy == thz.accuracy
    a, b = thz.ledger.per_inference(), nir.ledger.per_inference()
    assert {k: v for k, v in a.items() if k != "laser_optical_zj"} == \
        {k: v for k, v in b.items() if k != "laser_optical_zj"}
    # only the light's energy changes: the same photons, each 882x more energetic at 850 nm
    ratio = (SPEED_OF_LIGHT_M_S / NIR_M) / THZ_HZ
    assert b["laser_optical_zj"] / a["laser_optical_zj"] == pytest.approx(ratio, rel=1e-6)


def test_thermal_photons_swamp_a_thz_mode_but_not_an_nir_one():
    def n_thermal(f_hz: float, t_k: float = 300.0) -> float:
        return 1.0 / math.expm1(PLANCK_J_S * f_hz / (1.380649e-23 * t_k))

    assert 14 < n_thermal(THZ_HZ) < 16  # why photonic-limit's shot-noise bound fails at 0.4 THz
    assert n_thermal(SPEED_OF_LIGHT_M_S / NIR_M) < 1e-20
    assert np.isfinite(n_thermal(SPEED_OF_LIGHT_M_S / NIR_M))
