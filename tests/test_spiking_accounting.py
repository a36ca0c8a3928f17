"""Every spiking simulator charges every cost class its device has (issue #17): precision,
resident bytes, chip capacity (synapse memory included) before training, io, latency and
static power on the chip presets, spike-rate metrics for the break-even analysis, and a
trained state that reloads to the very same accuracy and ledger."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nonvon.energy_models import price
from nonvon.energy_models.preset import classes_within
from nonvon.errors import IncompatibleError
from nonvon.registry import registry
from nonvon.tasks import Task

SPIKING = ["snn-mlp", "snn-cnn", "snn-converted", "snn-ttfs", "loihi", "truenorth", "spinnaker2",
           "brainscales2", "brainscales2-ttfs"]
CHIP_PRESETS = ["loihi", "truenorth", "spinnaker2", "brainscales2"]
# tiny budgets: the digits task, one or two epochs
TINY = {"snn-mlp": {"hidden": (24,), "epochs": 2, "timesteps": 4},
        "snn-cnn": {"channels": (4,), "dense": 16, "kernel": 3, "epochs": 1, "timesteps": 3},
        "snn-converted": {"hidden": (24,), "epochs": 2, "timesteps": 8, "norm_samples": 200},
        "snn-ttfs": {"hidden": (16,), "epochs": 1, "batch_size": 20, "lr": 0.03},
        "loihi": {"hidden": (24,), "epochs": 2, "timesteps": 4, "qat_epochs": 1},
        "truenorth": {"hidden": (24,), "epochs": 2, "timesteps": 4, "qat_epochs": 1},
        "spinnaker2": {"hidden": (24,), "epochs": 2, "timesteps": 4, "qat_epochs": 1},
        "brainscales2": {"hidden": (24,), "epochs": 2, "timesteps": 4, "qat_epochs": 1},
        "brainscales2-ttfs": {"hidden": (16,), "epochs": 1, "batch_size": 20, "lr": 0.03}}


def build(name: str, **overrides):
    cls = registry().simulators[name]
    return registry().simulator(name, **{**cls.quick, **TINY[name], **overrides})


@pytest.fixture(scope="module")
def fitted(digits_task):
    """Each spiking simulator fitted once on digits, with its evaluation."""
    out = {}
    for name in SPIKING:
        sim = build(name).fit(digits_task, seed=0)
        out[name] = (sim, sim.evaluate(digits_task))
    return out


def test_the_registry_has_no_spiking_simulator_this_file_misses(reg):
    assert sorted(n for n, c in reg.simulators.items() if c.paradigm == "spiking") == sorted(SPIKING)


def test_precision_is_the_stored_weight_precision():
    expected = {"snn-mlp": "fp32", "snn-cnn": "fp32", "snn-converted": "fp32", "snn-ttfs": "fp32",
                "loihi": "int8", "truenorth": "ternary", "spinnaker2": "int16",
                "brainscales2": "int7", "brainscales2-ttfs": "int7"}
    assert {n: build(n).precision for n in SPIKING} == expected
    assert build("loihi", weight_bits=4).precision == "int4"
    assert build("spinnaker2", weight_bits=8).precision == "int8"
    assert build("brainscales2-ttfs", weight_bits=4).precision == "int5"  # 4 magnitude bits + sign


def _priced_pairs() -> list[tuple[str, str]]:
    """(simulator, chip preset) for every chip preset that prices the simulator's kinds."""
    reg = registry()
    return [(n, p) for n in SPIKING for p in CHIP_PRESETS
            if not reg.preset(p).can_price(reg.simulator(n).op_kinds)]


PAIRS = _priced_pairs()


def test_every_chip_simulator_is_priced_by_its_own_chip_preset():
    for chip in ("loihi", "truenorth", "spinnaker2", "brainscales2"):
        assert (chip, chip) in PAIRS
    assert ("brainscales2-ttfs", "brainscales2") in PAIRS


@pytest.mark.parametrize("name,preset_name", PAIRS)
def test_chip_presets_charge_memory_io_and_static_or_say_why_not(fitted, reg, name, preset_name):
    sim, result = fitted[name]
    preset = reg.preset(preset_name)
    assert preset.boundary == "chip" and set(classes_within("chip")) == {
        "compute", "memory", "interconnect", "io", "static"}
    by = price(result.ledger, preset).energy_by_class_j
    for cls in ("memory", "io", "static"):
        assert by[cls] > 0 or cls in preset.absent, f"{name} on {preset_name}: {cls}"
    # a class is never both charged and declared absent; a real reason, not the interim one
    for cls, reason in preset.absent.items():
        assert by[cls] == 0 and "INTERIM" not in reason and "(" in reason
    if "static" not in preset.absent:  # static power needs a latency: the chip's steps
        rep = price(result.ledger, preset)
        assert rep.latency_s == pytest.approx(
            result.ledger.per_inference()["chip_timestep"] * preset.ops["chip_timestep"].time_s)
        assert rep.breakdown_j["static"] == pytest.approx(preset.static_power_w * rep.latency_s)


def test_every_chip_preset_prices_interconnect_or_says_why(reg):
    for name in CHIP_PRESETS:
        p = reg.preset(name)
        if "interconnect" in p.absent:
            continue
        for kind in ("spike_local", "spike_hop"):
            op = p.ops[kind]
            assert op.value > 0 or "included" in op.source, (name, kind)


def test_digital_resident_bytes_are_fp32_weights_and_membranes(fitted):
    sim, r = fitted["snn-mlp"]
    params = sum(p.numel() for p in sim.network.parameters())
    assert r.ledger.resident_bytes == 4 * (params + 24 + 10)  # 64-24-10: 34 membranes
    sim, r = fitted["snn-ttfs"]
    weights = sum(w.numel() for w in sim.network.weights)
    assert r.ledger.resident_bytes == 4 * (weights + 2 * (16 + 10) + (64 + 16 + 10))


def test_chip_resident_bytes_are_synapses_at_stored_precision(fitted):
    sim, r = fitted["loihi"]
    synapses = 64 * 24 + 24 * 10
    assert r.ledger.resident_bytes == synapses * 8 / 8 + (24 + 10) * 48 / 8
    sim, r = fitted["truenorth"]
    assert r.ledger.resident_bytes == synapses / 8 + (24 + 10) * 20 / 8  # 1-bit crossbar


def _mnist_shaped(n: int = 4) -> Task:
    x = np.random.default_rng(0).random((n, 28, 28)).astype(np.float32)
    y = np.arange(n) % 2
    return Task("mnist-shaped", x, y, x[:2], y[:2], 2)


def test_a_784x512_8bit_layer_is_not_placed_on_one_loihi_core():
    sim = build("loihi", hidden=(512,), weight_bits=8)
    sim.check_task(_mnist_shaped())
    # 784 synapses x 8 bits = 784 bytes per neuron: 128 KB holds 167 of them, not 512
    assert sim._map.per_pop[1] == 128 * 1024 // 784
    assert sim._map.n_cores_of(1) == math.ceil(512 / (128 * 1024 // 784)) == 4
    # lower precision packs more neurons per core
    narrow = build("loihi", hidden=(512,), weight_bits=2)
    narrow.check_task(_mnist_shaped())
    assert narrow._map.n_cores_of(1) == 1


def test_a_network_over_the_chips_synapse_memory_is_refused_before_training():
    sim = build("loihi", hidden=(4096, 4096), epochs=50)
    with pytest.raises(IncompatibleError) as err:
        sim.fit(_mnist_shaped())
    msg = str(err.value)
    assert "loihi" in msg and "synapse" in msg and "16,777,216" in msg and "128 cores" in msg
    assert "chips=" in msg and "smaller layers" in msg  # the fix
    assert sim.network is None  # refused before any training
    # the same network fits on enough chips
    build("loihi", hidden=(4096, 4096), chips=2).check_task(_mnist_shaped())


def test_one_neuron_over_a_cores_synapse_memory_is_refused():
    wide = Task("wide", np.zeros((4, 70000), np.float32), np.arange(4) % 2,
                np.zeros((2, 70000), np.float32), np.array([0, 1]), 2)
    # SpiNNaker2 has no axon limit: 70,000 16-bit synapses (140,000 bytes) exceed one PE's 128 KB
    with pytest.raises(IncompatibleError, match=r"140,000 bytes.*131,072"):
        build("spinnaker2").check_task(wide)


def test_io_is_counted_from_what_enters_and_leaves(fitted, digits_task):
    n = len(digits_task.y_test)
    sim, r = fitted["snn-mlp"]  # rate coding: every input spike is injected
    per = r.ledger.per_inference()
    assert per["input_spike"] == sim.counts.input_spikes / n > 0
    assert per["host_transfer_byte"] == 10 * 4  # ten fp32 scores out
    sim, r = fitted["snn-cnn"]  # direct coding: 64 fp32 pixels in, ten scores out
    assert "input_spike" not in r.ledger.totals
    assert r.ledger.per_inference()["host_transfer_byte"] == (64 + 10) * 4
    for chip, score_bytes in (("loihi", 3), ("truenorth", 3), ("spinnaker2", 4)):
        sim, r = fitted[chip]
        per = r.ledger.per_inference()
        assert per["input_spike"] == sim.counts.input_spikes / n
        assert per["host_transfer_byte"] == 10 * score_bytes
        assert per["chip_timestep"] == 4


@pytest.mark.parametrize("name", SPIKING)
def test_spike_rate_and_spike_driven_counts(fitted, digits_task, name):
    sim, r = fitted[name]
    m, per = r.metrics, r.ledger.per_inference()
    assert 0 < m["spike_rate"] <= 1
    driven = {k.split(".", 1)[1]: v for k, v in m.items() if k.startswith("spike_driven.")}
    driven_in = {k.split(".", 1)[1]: v for k, v in m.items() if k.startswith("spike_driven_input.")}
    if name.startswith("brainscales2"):
        assert not driven  # chip power x time: no ledger kind scales with the spikes
        return
    assert driven, "no spike-driven part reported"
    for kind, v in driven.items():
        assert 0 < v <= per[kind] * (1 + 1e-12), kind  # a part of the ledger
        assert driven_in.get(kind, 0.0) <= v * (1 + 1e-12)
    if hasattr(sim, "counts") and not isinstance(sim.counts, dict):  # LIF networks
        c, n = sim.counts, len(digits_task.y_test)
        assert m["spike_rate"] == pytest.approx(c.spikes / c.spiking_neuron_steps)
        if "synop" in per:  # the chips: every synaptic event and every packet is spike-driven
            assert driven["synop"] == per["synop"]
            assert driven["spike_hop"] == per.get("spike_hop", 0.0)
            assert driven_in["synop"] == pytest.approx(c.synops_input / n)
    else:  # TTFS: each neuron spikes at most once per inference
        c = sim.event_totals
        assert driven["mac_fp32"] == pytest.approx(2 * c["synops"] / len(digits_task.y_test))


@pytest.mark.parametrize("name", SPIKING)
def test_trained_state_round_trips_through_safetensors(fitted, digits_task, tmp_path, name):
    from safetensors.torch import load_file, save_file

    sim, trained = fitted[name]
    path = tmp_path / "state.safetensors"
    save_file(sim.state_tensors(), str(path))
    fresh = build(name).load_state_tensors(load_file(str(path)), digits_task, seed=0)
    again = fresh.evaluate(digits_task)
    assert again.accuracy == trained.accuracy
    assert dict(again.ledger.totals) == dict(trained.ledger.totals)
    assert again.ledger.resident_bytes == trained.ledger.resident_bytes
    assert again.precision == trained.precision


def test_truenorth_energies_follow_from_the_published_power_sweep(reg):
    """Akopyan et al. 2015, Fig. 17 (0.8 V, 128 synapses per neuron): 68, 71, 94 mW at
    11.58, 20.07, 95.93 Hz on 2^20 neurons. The preset's per-event energy is the slope and
    its static power the intercept (numbers here from the paper, not read from the preset)."""
    rate = [1 << 20 << 7] * 3
    x = [r * hz for r, hz in zip(rate, (11.58, 20.07, 95.93), strict=True)]
    y = [68e-3, 71e-3, 94e-3]
    slope = (y[2] - y[0]) / (x[2] - x[0])
    p = reg.preset("truenorth")
    assert p.ops["synop"].value * 1e-12 == pytest.approx(slope, rel=1e-3)
    assert p.static_power_w == pytest.approx(y[0] - slope * x[0], rel=1e-3)
    assert p.static_low_w == pytest.approx(0.042)  # the 0.70 V zero-activity corner
    assert p.ops["chip_timestep"].time_s == 1e-3
    # the old all-in 26 pJ is recovered at the calibration point: marginal + static share
    events = (1 << 20) * 20.07 * 128
    assert (p.ops["synop"].value * 1e-12 + p.static_power_w / events) == pytest.approx(26e-12, rel=0.05)
