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
from nonvon.simulators.optical import Chip, DiffractiveConfig, DiffractiveOnn, MziConfig, MziOnn
from nonvon.simulators.optical.device import (
    crosstalk,
    homodyne_detect,
    photon_energy_j,
    quantize_phase,
    quantize_signed,
)
from nonvon.simulators.optical.diffraction import DiffractiveGeometry
from nonvon.simulators.optical.extras import DiffractiveRunStats, MziRunStats, PhotonCurve
from nonvon.simulators.optical.mesh import HybridMZINetwork

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
    assert per["modulator_symbol"] == sum(sizes[:-1]) and per["photodetector_read"] == sum(sizes[1:])
    # ideal converters are priced as 8-bit ones: 2^8 conversion steps per sample
    assert per["dac_conversion_step"] == 256 * sum(sizes[:-1])
    assert per["adc_conversion_step"] == 256 * sum(sizes[1:])
    assert per["mac_int8"] == 64 * sizes[0]  # the PCA front end (64 pixels -> 16)
    c = sim.config
    laser_j = c.photons_per_mac * (1 + c.lo_ratio) * macs * photon_energy_j(c.wavelength_nm * 1e-9)
    assert per["laser_optical_zj"] * 1e-21 == pytest.approx(laser_j, rel=1e-3)
    hold = sum(Chip(sim.net.double(), c).layers[i].hold_pi for i in range(len(sizes) - 1))
    sim.net.float()
    assert per["phase_shifter_hold"] == pytest.approx(hold, abs=0.5)
    assert r.extra(MziRunStats).macs_per_inference == macs
    assert r.metrics["optical_macs_per_inference"] == macs  # the report's shot-noise floor reads it


def test_shot_noise_at_a_starved_budget_costs_accuracy(fitted_mzi, digits_task):
    clean = fitted_mzi.with_config(**IDEAL).evaluate(digits_task).accuracy
    starved = fitted_mzi.with_config(shot_noise=True, photons_per_mac=1e-4).evaluate(digits_task).accuracy
    assert clean > 0.6 and starved < clean - 0.15


def test_loss_reduces_detected_photons(fitted_mzi, digits_task):
    a = fitted_mzi.with_config(**IDEAL).evaluate(digits_task, limit=50).extra(MziRunStats)
    lossy = fitted_mzi.with_config(**IDEAL, coupling_loss_db=3.0)
    b = lossy.evaluate(digits_task, limit=50).extra(MziRunStats)
    assert not hasattr(fitted_mzi, "last_stats"), "side results travel on the result, not the simulator"
    ratio = b.detected_signal_photons_per_mac / a.detected_signal_photons_per_mac
    assert ratio == pytest.approx(10 ** -0.3, rel=1e-6)


def test_save_load_round_trip(fitted_mzi, digits_task, tmp_path):
    path = tmp_path / "m.safetensors"
    fitted_mzi.save(path)
    again = MziOnn.load(path)
    r1, r2 = fitted_mzi.evaluate(digits_task), again.evaluate(digits_task)
    assert r1.accuracy == r2.accuracy and dict(r1.ledger.totals) == dict(r2.ledger.totals)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_mzi_cuda_without_cuda_is_refused(digits_task):
    with pytest.raises(ConfigError, match="no CUDA device"):
        MziOnn(**{**MziOnn.quick, "device": "cuda"}).fit(digits_task, seed=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("init", ["phase", "svd"])
def test_mzi_trains_on_cuda_and_comes_back_to_the_cpu(digits_task, init):
    kw = {**MziOnn.quick, "device": "cuda", "init": init, "finetune_epochs": 1 if init == "svd" else 0}
    sim = MziOnn(**kw).fit(digits_task, seed=0)
    assert {p.device.type for p in sim.net.parameters()} == {"cpu"}
    assert sim.evaluate(digits_task).accuracy > 0.5  # chance is 0.1


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


def test_single_detection_reads_one_detector_per_class(digits_task):
    sim = DiffractiveOnn(**{**DiffractiveOnn.quick, "epochs": 1}, **IDEAL, detection="single")
    per = sim.fit(digits_task, seed=0).evaluate(digits_task, limit=20).ledger.per_inference()
    assert per["photodetector_read"] == 10 and per["cmp_int32"] == 9
    assert sim.net.masks.shape[0] == 10


def test_differential_scores_are_positive_minus_negative_detector():
    from nonvon.simulators.optical.diffraction import class_scores

    counts = torch.tensor([[5.0, 1.0, 2.0, 0.0, 9.0, 8.5]])  # (c0+, c0-, c1+, c1-, c2+, c2-)
    assert class_scores(counts, "differential").tolist() == [[4.0, 2.0, 0.5]]
    assert class_scores(counts, "differential").argmax(1).item() == 0  # the brightest (c2+) loses
    assert class_scores(counts, "single").argmax(1).item() == 4


def test_diffractive_counts_and_noise(fitted_d2nn, digits_task):
    sim = fitted_d2nn.with_config(**IDEAL)
    r = sim.evaluate(digits_task)
    per = r.ledger.per_inference()
    assert "phase_shifter_hold" not in per  # passive layers
    # differential detection (the default): a positive and a negative detector per class, a
    # subtraction per class and the argmax
    assert per["photodetector_read"] == 20 and per["optical_pass"] == 1 and per["cmp_int32"] == 10 + 9
    assert per["adc_conversion_step"] == 20 * 256 and per["modulator_symbol"] == sim.net.input_px ** 2
    assert per["dac_conversion_step"] == 256 * sim.net.input_px ** 2
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
    # the laser's wall power is its optical power over the wall-plug efficiency in the preset
    wpe = 1e-9 / load_preset(PRESET_DIR / "photonic-mzi.toml").ops["laser_optical_zj"].value
    assert 0.1 <= wpe <= 0.5
    assert real.breakdown_j["laser_optical_zj"] == pytest.approx(limit.energy_j / wpe, rel=1e-9, abs=0)
    # one 100 ps symbol per optical pass, then the host link: PCIe Gen3 x16, 15.75 GB/s
    per = r.ledger.per_inference()
    link_s = per["host_transfer_byte"] / 15.75e9
    assert real.latency_s == pytest.approx(1e-10 * per["optical_pass"] + link_s, rel=1e-4)
    assert limit.boundary == "core" and real.boundary == "chip"


# -- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, match", [
    ({"mzi_loss_db": -0.1}, "mzi_loss_db"), ({"coupling_loss_db": -1.0}, "coupling_loss_db"),
    ({"wavelength_nm": 0.0}, "wavelength_nm"), ({"wavelength_nm": -1550.0}, "wavelength_nm"),
    ({"photons_per_mac": 0.0}, "photons_per_mac"), ({"photons_per_mac": -3.0}, "photons_per_mac"),
    ({"phase_bits": 0}, "phase_bits"), ({"dac_bits": 0}, "dac_bits"), ({"adc_bits": 1.5}, "adc_bits"),
    ({"arrangement": "triangle"}, "arrangement"), ({"thermal_crosstalk": 0.7}, "thermal_crosstalk"),
    ({"hidden": (0,)}, "hidden"), ({"phase_noise_rad": float("nan")}, "phase_noise_rad"),
    ({"n_inputs": 0}, "n_inputs"), ({"init": "random"}, "init"), ({"finetune_epochs": -1}, "finetune_epochs"),
    ({"dropout": 1.0}, "dropout"), ({"device": "bogus"}, "device")])
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


# -- converter energy follows the bits (Walden scaling) --------------------------------------------------
def test_conversion_steps_are_two_to_the_bits():
    from nonvon.simulators.optical.device import conversion_steps

    assert [conversion_steps(b) for b in (1, 4, 8)] == [2, 16, 256] and conversion_steps(None) == 256


def test_converter_energy_scales_with_bits(fitted_mzi, digits_task):
    preset = load_preset(PRESET_DIR / "photonic-mzi.toml")
    sizes = fitted_mzi.net.sizes
    e = {}
    for bits in (8, 4):
        sim = fitted_mzi.with_config(dac_bits=bits, adc_bits=bits, photon_curve=())
        r = sim.evaluate(digits_task, limit=20)
        e[bits] = price(r.ledger, preset).breakdown_j
    # 8 bits: 2^8 conversion steps per sample at the preset's figure of merit; 4 bits: 2^-4 of it
    dac, adc = (preset.ops[k].value * 1e-12 for k in ("dac_conversion_step", "adc_conversion_step"))
    assert e[8]["dac_conversion_step"] == pytest.approx(256 * dac * sum(sizes[:-1]), rel=1e-12, abs=0)
    assert e[8]["adc_conversion_step"] == pytest.approx(256 * adc * sum(sizes[1:]), rel=1e-12, abs=0)
    assert 1e-12 < 256 * dac < 30e-12 and 1e-12 < 256 * adc < 30e-12  # pJ per 8-bit sample
    for kind in ("dac_conversion_step", "adc_conversion_step"):
        assert e[4][kind] == pytest.approx(e[8][kind] / 16, rel=1e-12, abs=0)


def test_breakdown_separates_every_photonic_component(fitted_mzi, digits_task):
    r = fitted_mzi.with_config(photon_curve=()).evaluate(digits_task, limit=20)
    b = price(r.ledger, load_preset(PRESET_DIR / "photonic-mzi.toml")).breakdown_j
    for kind in ("laser_optical_zj", "dac_conversion_step", "modulator_symbol", "photodetector_read",
                 "adc_conversion_step", "phase_shifter_hold"):
        assert b[kind] > 0, kind


# -- the photon-budget curve in the result -------------------------------------------------------------
def test_mzi_photon_curve_is_a_typed_extra(fitted_mzi, digits_task):
    r = fitted_mzi.evaluate(digits_task)
    curve = r.extra(PhotonCurve)
    pts = curve.points()
    assert curve.unit == "per_mac" and curve.budgets == fitted_mzi.config.photon_curve
    assert curve.n_samples == len(digits_task.y_test)
    assert pts[0]["accuracy"] < pts[-1]["accuracy"] - 0.2
    for p in pts:  # the local oscillator reaches the diodes too; optical energy is linear in the budget
        assert p["detected_photons_per_mac"] > p["photons_per_mac"] > p["detected_signal_photons_per_mac"]
        assert p["optical_energy_j"] / p["photons_per_mac"] == pytest.approx(
            pts[0]["optical_energy_j"] / pts[0]["photons_per_mac"], rel=1e-6)
    assert fitted_mzi.evaluate(digits_task).extra(PhotonCurve) == curve  # same chip seed, same curve
    assert not any(k.startswith("photon_curve") for k in r.metrics), "no string-built metric keys"
    assert fitted_mzi.with_config(photon_curve=()).evaluate(digits_task, limit=10).extra(PhotonCurve) is None


def test_photon_curve_round_trips_through_result_json_and_old_files_still_read(fitted_mzi, digits_task,
                                                                             tmp_path):
    from nonvon.result import RawExtra, Result, extras_from_dict
    from nonvon.simulators.optical.figures import curve_of_row

    r = fitted_mzi.with_config(photon_curve=(1.0, 10.0), photon_curve_samples=30).evaluate(digits_task)
    again = Result.load(r.save(tmp_path / "cell.json"))
    assert again.extras == r.extras and again.extra(PhotonCurve) == r.extra(PhotonCurve)
    # a file whose extra type is not registered in the reading process keeps it as data
    raw = extras_from_dict({"some_plugins_curve": {"x": [1, 2]}})
    assert raw == (RawExtra("some_plugins_curve", {"x": [1, 2]}),)
    # results written before typed extras: the curve as flat metric keys
    curve = r.extra(PhotonCurve)
    flat = {"photon_curve.n_samples": 30.0}
    for i, p in enumerate(curve.points()):
        flat |= {f"photon_curve.{i}.{k}": v for k, v in p.items()}
    assert curve_of_row({"metrics": flat}) == curve
    assert curve_of_row({"metrics": {}, "extras": {}}) is None


def test_diffractive_photon_curve_is_a_typed_extra(fitted_d2nn, digits_task):
    sim = fitted_d2nn.with_config(photon_curve=(10.0, 1e5), photon_curve_samples=200)
    r = sim.evaluate(digits_task)
    pts = r.extra(PhotonCurve).points()
    assert len(pts) == 2 and pts[0]["accuracy"] < pts[1]["accuracy"] - 0.2
    assert pts[1]["detected_photons"] == pytest.approx(1e4 * pts[0]["detected_photons"], rel=1e-9)
    assert r.extra(DiffractiveRunStats).detected_photons_per_inference > 0


def test_photon_curve_lands_in_compare_results_and_the_report_section(tmp_path):
    import json

    from nonvon.compare import compare
    from nonvon.registry import registry
    from nonvon.report import write_report
    from nonvon.simulators.optical.figures import PHOTON_BUDGET_FIGURE, report_section

    assert registry().report_sections["photon-budget"] is report_section  # found by entry point
    tiny = {"hidden": (8,), "n_inputs": 8, "epochs": 1, "batch_size": 64, "augment_shift": 0,
            "photon_curve": (0.3, 3.0, 30.0), "photon_curve_samples": 100}
    rows = compare(["digits"], ["onn-mzi"], overrides={"onn-mzi": tiny}, progress=False,
                   log=lambda *a: None).rows
    rows = json.loads(json.dumps(rows))  # as results.json holds them
    assert all(r["extras"]["photon_curve"]["budgets"] == [0.3, 3.0, 30.0] for r in rows)
    section = report_section(rows, tmp_path)
    assert section.images[PHOTON_BUDGET_FIGURE].startswith(b"\x89PNG")
    table = next(b["table"] for b in section.blocks if "table" in b)
    assert [row[2] for row in table["rows"]] == ["3.1", "0.66"]  # the two Wang et al. 2022 points
    assert report_section([{**rows[0], "extras": {}, "metrics": {}}], tmp_path) is None
    write_report(rows, tmp_path)
    assert (tmp_path / PHOTON_BUDGET_FIGURE).read_bytes().startswith(b"\x89PNG")
    md = (tmp_path / "report.md").read_text()
    assert "## Accuracy vs photon budget (optical)" in md and f"]({PHOTON_BUDGET_FIGURE})" in md


def test_accuracy_at_interpolates_in_log_photons():
    from nonvon.simulators.optical.figures import accuracy_at

    assert accuracy_at([1.0, 10.0, 100.0], [0.1, 0.5, 0.9], 10 ** 0.5) == pytest.approx(0.3)
    assert accuracy_at([1.0, 10.0], [0.1, 0.5], 0.5) is None


@pytest.mark.parametrize("cls", [MziOnn, DiffractiveOnn])
@pytest.mark.parametrize("option, match", [
    ({"photon_curve": (0.0,)}, "photon_curve"), ({"photon_curve": (-1.0, 2.0)}, "photon_curve"),
    ({"photon_curve": ("many",)}, "photon_curve"), ({"photon_curve": 5}, "photon_curve"),
    ({"photon_curve_samples": 0}, "photon_curve_samples"), ({"dac_bits": 0}, "dac_bits"),
    ({"adc_bits": 0.5}, "adc_bits")])
def test_photon_curve_and_converter_options_reject_bad_values(cls, option, match):
    with pytest.raises(ConfigError, match=match):
        cls(**option)


# -- studies and benchmark helpers ---------------------------------------------------------------------
def _load(relpath: str):
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str((root / relpath).parent))  # benchmarks import their _timing sibling
    try:
        spec = importlib.util.spec_from_file_location(Path(relpath).stem + "_under_test", root / relpath)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    return mod


def test_diffractive_study_budget_and_published_comparison():
    study = _load("studies/onn_diffractive.py")
    assert study.epochs_for_budget(100.0, 0.01, 60_000, 64, 30) == 9  # 9.38 s per epoch, 10% kept
    assert study.epochs_for_budget(1.0, 0.01, 60_000, 64, 30) == 1
    assert study.epochs_for_budget(1e6, 0.01, 60_000, 64, 30) == 30
    rows = {r["reference"]: r for r in study.compare_published("mnist", 0.975, 10)}
    assert rows["Lin et al. 2018"]["ratio"] == pytest.approx(0.975 / 0.9175)
    assert "mean-squared-error" in rows["Lin et al. 2018"]["note"]
    low = {r["reference"]: r for r in study.compare_published("fashion-mnist", 0.85, 3)}
    assert "below the issue #4 target" in low["Mengu et al. 2019"]["note"]


def test_photon_budget_study_against_wang():
    study = _load("studies/photon_budget.py")
    rows = [{"accuracy_mean": a, "detected_photons_per_mac_incl_lo": p,
             "detected_signal_photons_per_mac": p / 10} for p, a in ((0.1, 0.2), (1.0, 0.6), (10.0, 0.99))]
    vs = {v["photons_per_mac"]: v for v in study.versus_wang(rows)}
    assert vs[3.1]["ratio_incl_lo"] == pytest.approx((0.6 + 0.39 * math.log10(3.1)) / 0.99)
    assert vs[3.1]["ours_signal_only"] is None  # 3.1 signal photons: beyond the budgets run


def test_optical_benchmark_runs_tiny_and_plots(tmp_path):
    bench = _load("benchmarks/optical.py")
    mzi = [bench.bench_mzi(n, 4, "cpu", 1) for n in (4, 8)]
    diff = [bench.bench_diffractive(p, 1, "cpu", 1) for p in (16, 24)]
    assert all(r["ratio"] > 0 for r in mzi + diff)
    bench.plot(mzi, diff, "cpu", tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes().startswith(b"\x89PNG")
