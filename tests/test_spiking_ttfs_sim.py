"""``snn-ttfs`` and ``brainscales2-ttfs``: ledgers from the spikes emitted, BrainScaleS-2
limits with the limit and the value in the error, emulation time, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nonvon.energy_models import price
from nonvon.errors import ConfigError, DataError, IncompatibleError
from nonvon.simulators.spiking.ttfs_simulator import (
    SQRT_LOG_MACS,
    BrainScaleS2TTFS,
    TTFSSimulator,
    check_brainscales2,
)
from nonvon.tasks import Task

QUICK = {"hidden": (16,), "epochs": 2, "batch_size": 20, "lr": 0.03}


@pytest.fixture(scope="module")
def digital(digits_task):
    return TTFSSimulator(**QUICK).fit(digits_task, seed=0)


def _mnist_like(n: int = 6) -> Task:
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28)).astype(np.float32)
    y = np.arange(n) % 2
    return Task("mnist-like", x, y, x[:2], y[:2], 2)


def test_ledger_counts_emitted_spikes(digital, digits_task):
    sim = digital
    with torch.no_grad():  # prune some synapses and silence a hidden neuron: both must cost less
        sim.network.weights[0][:, :5] = 0.0
        sim.network.weights[0][3] = -1.0
    r = sim.evaluate(digits_task, limit=50)
    times = sim.spike_times
    assert not np.isfinite(times[1][:, 3]).any()
    synops = 0
    for pre, w in zip(times[:-1], sim.network.weights, strict=True):
        fanout = (w.detach().numpy() != 0).sum(0)
        synops += int((np.isfinite(pre) * fanout).sum())
    c = sim.event_totals
    assert c["synops"] == synops
    assert c["input_spikes"] == np.isfinite(times[0]).sum() == 50 * 64  # every pixel spikes once
    assert c["neuron_spikes"] == sum(np.isfinite(t).sum() for t in times[1:])
    spikes = c["input_spikes"] + c["neuron_spikes"]
    expected = {"mul_fp32": spikes + c["updates"],
                "mac_fp32": 2 * synops + c["updates"] + 2 * SQRT_LOG_MACS * c["solves"],
                "cmp_fp32": c["updates"] + 2 * c["solves"] + 50 * 9,
                "sram_byte": 4 * spikes + 4 * synops + 16 * c["updates"],
                "input_spike": 50 * 64,               # one injected spike per pixel
                "host_transfer_byte": 50 * 10 * 4}    # ten fp32 output spike times out
    assert dict(r.ledger.totals) == pytest.approx(expected, rel=0, abs=1e-6)
    assert all(v == int(v) for v in r.ledger.totals.values())
    assert r.metrics["effective_acs"] == pytest.approx(synops / 50)


@pytest.mark.parametrize("sizes, k, match", [
    ((256, 350, 10), 2, r"720 neuron circuits; the chip has 512"),
    ((784, 246, 10), 2, r"fan-in 784.*limit is 256"),
    ((256, 246, 10), 1, r"fan-in 256.*limit is 128"),
    ((256, 246, 250, 10), 2, r"1012 neuron circuits"),
])
def test_brainscales2_limits_name_limit_and_value(sizes, k, match):
    with pytest.raises(IncompatibleError, match=match):
        check_brainscales2(sizes, k)


def test_brainscales2_holds_goeltz_network():
    check_brainscales2((256, 246, 10), 2)  # 2 x 256 = 512 circuits, fan-in 256 on 512 synapses
    task = _mnist_like()
    sim = BrainScaleS2TTFS()  # defaults: crop 24, 16 x 16, 256-246-10
    sim.check_task(task)
    assert sim.sizes(task) == (256, 246, 2)
    with pytest.raises(IncompatibleError, match="512"):
        BrainScaleS2TTFS(hidden=(350,)).check_task(task)
    with pytest.raises(IncompatibleError, match="fan-in 784"):
        BrainScaleS2TTFS(crop=None, input_side=None).check_task(task)


def test_brainscales2_prices_emulation_time(digits_task, reg):
    sim = BrainScaleS2TTFS(**QUICK).fit(digits_task, seed=0)
    r = sim.evaluate(digits_task)
    c = sim.config
    per_image = (sim.window + c.relax_tau_m * 2 * c.tau_syn) * c.tau_syn_hw_s / c.tau_syn
    assert sim.window >= c.t_late * c.tau_syn
    assert r.ledger.per_inference() == pytest.approx({"emulation_s": per_image})
    e = price(r.ledger, reg.preset("brainscales2"))
    assert e.energy_j == pytest.approx(reg.preset("brainscales2").ops["emulation_s"].value * per_image)
    assert e.latency_s == pytest.approx(per_image)
    with pytest.raises(IncompatibleError, match="cannot price"):
        price(r.ledger, reg.preset("cmos-45nm"))
    for w in sim.network.weights:  # 6-bit magnitudes with a sign, one scale per layer
        assert len(torch.unique(w.detach())) <= 2 * 63 + 1
    sim.window = 0.0  # a window that closes before any output spike: every sample is lost
    assert sim.evaluate(digits_task, limit=20).accuracy == 0.0


def test_bad_input_is_refused(digits_task):
    with pytest.raises(ConfigError, match="theta"):
        TTFSSimulator(theta=0.0)
    with pytest.raises(ConfigError, match="tau_syn"):
        TTFSSimulator(tau_syn=-1.0)
    with pytest.raises(ConfigError, match="t_early"):
        TTFSSimulator(t_early=2.0, t_late=1.0)
    with pytest.raises(ConfigError, match="6-bit"):
        BrainScaleS2TTFS(weight_bits=8)
    with pytest.raises(ConfigError, match="circuits_per_neuron"):
        BrainScaleS2TTFS(circuits_per_neuron=0)
    bad = Task("bad", digits_task.x_train * 2, digits_task.y_train, digits_task.x_test,
               digits_task.y_test, 10)
    with pytest.raises(DataError, match=r"\[0, 1\]"):  # the base class's shared check
        TTFSSimulator(**QUICK).fit(bad)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        TTFSSimulator(**QUICK).fit(digits_task).evaluate(
            Task("neg", digits_task.x_train, digits_task.y_train, -digits_task.x_test,
                 digits_task.y_test, 10))
    assert math.isfinite(TTFSSimulator().config.t_late)


def test_goltz_study_writes_results_and_figure(tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "studies" / "ttfs_goltz.py"
    spec = importlib.util.spec_from_file_location("ttfs_goltz", path)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    study.main(["--quick", "--task", "digits", "--out", str(tmp_path), "--no-progress",
                "--monitor", "50"])
    record = json.loads((tmp_path / "ttfs_goltz.json").read_text())
    assert (tmp_path / "ttfs_goltz.png").stat().st_size > 10_000
    assert record["published"]["brainscales2"]["energy_per_image_j"] == 8.4e-6
    cmp_ = record["comparison"]
    assert 0 < cmp_["energy_ratio_low"] <= cmp_["energy_ratio"] <= cmp_["energy_ratio_high"]
    assert len(cmp_["sensitivity"]) == 9
    assert all("monitor_accuracy" in h for h in record["settings"]["software"]["history"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["study"] == "ttfs_goltz"
