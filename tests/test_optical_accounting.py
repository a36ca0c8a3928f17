"""Optical accounting (issue #17): every cost class the photonic chip has, resident memory, the
host link, static power over the modelled latency, precision, and the trained state's exact
round trip."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from safetensors.torch import save_file

from nonvon.energy_models import price
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.simulators.optical import DiffractiveOnn, MziOnn

PIXELS = 64  # the digits task: 8 x 8 images, 10 classes
SIMS = {"onn-mzi": MziOnn, "onn-diffractive": DiffractiveOnn}


def _cfg(cls) -> dict:
    # tiny budgets: accounting and the round trip do not need a well-trained network
    return {**cls.quick, "photon_curve": (), "epochs": 1}


_FITTED: dict = {}


def _fitted(name: str, task):
    if name not in _FITTED:
        cls = SIMS[name]
        sim = cls(**_cfg(cls)).fit(task, seed=0)
        _FITTED[name] = sim, sim.evaluate(task)
    return _FITTED[name]


@pytest.fixture(params=sorted(SIMS))
def fitted(request, digits_task):
    return _fitted(request.param, digits_task)


def test_every_chip_preset_prices_memory_io_and_static(fitted, check_chip_presets):
    sim, result = fitted
    check_chip_presets(sim, result, {"photonic-mzi"})


def test_the_shot_noise_bound_is_a_core_floor(fitted, reg):
    _, result = fitted
    limit = reg.preset("photonic-limit")
    rep = price(result.ledger, limit)
    assert rep.boundary == "core" and rep.energy_by_class_j["compute"] > 0
    assert rep.energy_j == rep.energy_by_class_j["compute"]  # the light alone


def test_precision_is_analog(fitted):
    sim, result = fitted
    assert sim.precision == result.precision == "analog"


def test_host_transfer_and_resident_bytes(fitted):
    sim, result = fitted
    per = result.ledger.per_inference()
    assert per["host_transfer_byte"] == PIXELS + 1  # 8-bit pixels in, class index out
    if isinstance(sim, DiffractiveOnn):  # passive layers: only the image buffer is resident
        assert result.ledger.resident_bytes == PIXELS
        return
    sizes = sim.net.sizes  # 8-bit converters: one byte per DAC and ADC code
    front = sim.front[0].size + PIXELS  # int8 PCA weights and the input buffer
    codes = max(a + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    assert result.ledger.resident_bytes == front + 4 * sum(sizes[1:]) + codes


def test_static_power_is_charged_over_the_latency_with_the_host_link(fitted, reg):
    _, result = fitted
    chip = reg.preset("photonic-mzi")
    rep = price(result.ledger, chip)
    per = result.ledger.per_inference()
    # one 100 ps symbol per optical pass, and the host link: PCIe Gen3 x16, 15.75 GB/s
    assert rep.latency_s == pytest.approx(1e-10 * per["optical_pass"] + per["host_transfer_byte"] / 15.75e9,
                                          rel=1e-4)
    assert rep.breakdown_j["static"] == pytest.approx(chip.static_power_w * rep.latency_s, rel=1e-12)
    assert chip.static_power_w == pytest.approx(12.0 / 4)  # AIFOtec: 12 W typ. for four cooled lasers


def test_a_receiver_costs_its_power_for_the_whole_symbol(fitted, reg):
    _, result = fitted
    rep = price(result.ledger, reg.preset("photonic-mzi"))
    reads = result.ledger.per_inference()["photodetector_read"]
    # Li et al. 2020: 0.55 pJ/bit at 54 Gb/s is 29.7 mW, drawn for a whole 100 ps symbol
    assert rep.breakdown_j["photodetector_read"] == pytest.approx(reads * 0.55e-12 * 54e9 * 1e-10, rel=1e-9)


def test_state_round_trip_gives_the_same_accuracy_and_ledger(fitted, digits_task):
    sim, before = fitted
    cls = type(sim)
    tensors = st_load(st_save(sim.state_tensors()))  # through the file format a cached cell uses
    again = cls(**_cfg(cls)).load_state_tensors(tensors, digits_task, seed=0).evaluate(digits_task)
    assert again.accuracy == before.accuracy and again.ledger == before.ledger


def test_mzi_files_saved_before_the_state_api_still_load(digits_task, tmp_path):
    sim, before = _fitted("onn-mzi", digits_task)
    # the earlier format: the calibration in the metadata, not in the tensors
    tensors = {k: v for k, v in sim.state_tensors().items()
               if not k.startswith("calib.") and k != "net.sizes"}
    meta = {"config": json.dumps({**sim.config.__dict__}), "sizes": json.dumps(sim.net.sizes),
            "in_scale": repr(sim.in_scale), "dac_fs": json.dumps(sim.dac_fs),
            "adc_fs": json.dumps(sim.adc_fs), "fitted_on": json.dumps(sim._fitted_on), "seed": "0"}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    again = MziOnn.load(tmp_path / "old.safetensors").evaluate(digits_task)
    assert again.accuracy == before.accuracy and again.ledger == before.ledger


@pytest.mark.parametrize("cls", [MziOnn, DiffractiveOnn])
def test_state_errors_are_clear(cls, digits_task):
    with pytest.raises(ConfigError, match="not been fitted"):
        cls(**_cfg(cls)).state_tensors()
    with pytest.raises(ConfigError, match="state"):
        cls(**_cfg(cls)).load_state_tensors({}, digits_task)


def test_state_of_another_network_is_refused(fitted, digits_task):
    sim, _ = fitted
    tensors = sim.state_tensors()
    if isinstance(sim, MziOnn):
        fewer = digits_task.select_classes(0, 1, 2)
        with pytest.raises(IncompatibleError, match="3 classes"):
            MziOnn(**_cfg(MziOnn)).load_state_tensors(tensors, fewer)
    else:
        other = DiffractiveOnn(**{**_cfg(DiffractiveOnn), "n_pixels": 20})
        with pytest.raises(IncompatibleError, match="does not fit this config"):
            other.load_state_tensors(tensors, digits_task)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
