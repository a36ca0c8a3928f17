"""Spiking simulators: counts against independent event-by-event loops, chip limits, presets."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from nonvon.energy_models import price
from nonvon.errors import ConfigError, DataError, IncompatibleError
from nonvon.simulators.spiking import (
    BrainScaleS2,
    CoreMap,
    Counter,
    LIFConfig,
    Loihi,
    SnnMLP,
    SpiNNaker2,
    TrueNorth,
    spiking_mlp,
)
from nonvon.simulators.spiking.chips import quantize_symmetric, ternarize_rows
from nonvon.simulators.spiking.counting import fanout_per_core
from nonvon.tasks import Task

FAST = {"hidden": (24,), "epochs": 6, "timesteps": 6, "batch_size": 32, "lr": 5e-3}


@pytest.fixture(scope="module")
def small_task(digits_task) -> Task:  # 600 train / 200 test digits, 8 x 8
    return digits_task


def _sparse_mlp(seed: int):
    torch.manual_seed(seed)
    net = spiking_mlp(12, (10, 7), 3, LIFConfig(timesteps=9, beta=0.8, threshold=0.6, coding="rate"))
    with torch.no_grad():
        for layer in net.layers:  # some synapses absent, to test that they cost nothing
            layer.weight.mul_((torch.rand_like(layer.weight) > 0.3).float())
            layer.weight.mul_(2.0)
    return net


def test_counts_match_an_event_by_event_loop(seed):
    net = _sparse_mlp(seed)
    core_map = CoreMap([12, 10, 7, 3], neurons_per_core=4, mesh_width=3)
    x = torch.rand(5, 12)
    net.generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        _, rec = net.run(x, record=True)
    c = Counter(net, core_map).count(rec)

    synops = packets = hops = spikes = 0
    for i, layer in enumerate(net.layers):
        w = layer.weight.detach().numpy()
        src_core = core_map.cores_of(i).numpy()
        dst_core = core_map.cores_of(i + 1).numpy()
        s = rec.inputs[i].numpy()  # (T, B, n_in), 0/1
        for _t, _b, j in zip(*np.nonzero(s), strict=True):
            if i > 0:
                spikes += 1
            targets = np.nonzero(w[:, j])[0]
            synops += len(targets)
            for core in {int(dst_core[k]) for k in targets}:
                packets += 1
                a, d = int(src_core[j]), core
                hops += abs(a % 3 - d % 3) + abs(a // 3 - d // 3)
    assert (c.synops, c.packets, c.hops, c.spikes) == (synops, packets, hops, spikes)
    assert synops > 0 and hops > 0
    # every neuron of every layer is visited once per step
    assert c.neuron_updates_active + c.neuron_updates_idle == 9 * 5 * (10 + 7 + 3)
    # NeuroBench figures from the same counts
    nb = c.neurobench()
    assert nb.effective_acs == synops / 5
    assert nb.dense_ops == 9 * (12 * 10 + 10 * 7 + 7 * 3)
    assert math.isclose(nb.activation_sparsity, 1 - spikes / (9 * 5 * 17))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_counting_on_the_gpu_equals_counting_on_the_cpu(seed):
    """Recordings are counted where they were made: the same counts as on the CPU."""
    from nonvon.simulators.spiking import spiking_cnn

    torch.manual_seed(seed)
    net = spiking_cnn(12, (4, 6), 16, 3, LIFConfig(timesteps=5, coding="rate"), kernel=3)
    core_map = CoreMap([144, 576, 216, 16, 3], neurons_per_core=64, mesh_width=4)
    net.generator = torch.Generator(device="cuda").manual_seed(0)
    with torch.no_grad():
        _, rec = net.cuda().run(torch.rand(7, 12, 12, device="cuda"), record=True)
    on_gpu = Counter(net.cpu(), core_map).to("cuda").count(rec)
    for name in ("inputs", "currents", "mems"):
        setattr(rec, name, [t.cpu() for t in getattr(rec, name)])
    rec.logits = rec.logits.cpu()
    assert on_gpu == Counter(net, core_map).count(rec)
    assert on_gpu.synops > 0 and on_gpu.hops > 0


def test_conv_fanout_matches_brute_force(seed):
    torch.manual_seed(seed)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    with torch.no_grad():
        conv.weight[0, 1] = 0  # a missing kernel slice
    in_shape = (2, 7, 7)
    out_hw = 4
    cores = torch.arange(3 * out_hw * out_hw) // 10
    fan, per_core = fanout_per_core(conv, in_shape, cores)
    w = conv.weight.detach().numpy()
    brute = np.zeros((int(cores.max()) + 1, 2 * 7 * 7))
    for o in range(3):
        for oy in range(out_hw):
            for ox in range(out_hw):
                k = int(cores[(o * out_hw + oy) * out_hw + ox])
                for ci in range(2):
                    for ky in range(3):
                        for kx in range(3):
                            y, xx = oy * 2 - 1 + ky, ox * 2 - 1 + kx
                            if 0 <= y < 7 and 0 <= xx < 7 and w[o, ci, ky, kx] != 0:
                                brute[k, (ci * 7 + y) * 7 + xx] += 1
    np.testing.assert_array_equal(per_core.numpy(), brute)
    np.testing.assert_array_equal(fan.numpy(), brute.sum(0))


def test_generic_ledger_and_neurobench(small_task):
    sim = SnnMLP(**FAST).fit(small_task, seed=0)
    r = sim.evaluate(small_task)
    per = r.ledger.per_inference()
    nb = sim.neurobench
    assert r.accuracy > 0.5
    assert nb.effective_macs == 0 and nb.effective_acs > 0  # rate coding: all accumulates
    assert 0 < nb.activation_sparsity < 1
    assert nb.dense_ops == 6 * (64 * 24 + 24 * 10)
    assert per["add_fp32"] >= nb.effective_acs  # one accumulate per synaptic event, at least
    assert per["sram_byte"] >= 4 * nb.effective_acs


def test_direct_coding_counts_macs_once(small_task):
    sim = SnnMLP(**{**FAST, "coding": "direct"}).fit(small_task, seed=0)
    sim.evaluate(small_task)
    nonzero = (small_task.x_test.reshape(len(small_task.x_test), -1) != 0).sum(1).mean()
    w = sim.network.layers[0].weight.detach()
    assert (w != 0).all()
    # each non-zero pixel meets each of the 24 first-layer neurons once per inference
    assert math.isclose(sim.neurobench.effective_macs, nonzero * 24, rel_tol=1e-9)


def test_loihi_quantizes_and_prices(small_task):
    sim = Loihi(**FAST, qat_epochs=1, weight_bits=4).fit(small_task, seed=0)
    for layer in sim.network.layers:
        assert len(torch.unique(layer.weight.detach())) <= 2 * 7 + 1  # 4-bit signed: -7..7
    r = sim.evaluate(small_task)
    assert r.accuracy > 0.4
    ledger = r.ledger.per_inference()
    assert ledger["synop"] == sim.neurobench.effective_acs
    from nonvon.registry import registry

    preset = registry().preset("loihi")
    rep = price(r.ledger, preset)
    # every event at Davies et al.'s energies, io at the preset's, and static power over
    # T steps of the preset's step time
    assert ledger["chip_timestep"] == 6
    assert ledger["input_spike"] == sim.counts.input_spikes / len(small_task.y_test)
    assert ledger["host_transfer_byte"] == 10 * 3  # ten 24-bit class scores
    # every spike a hidden neuron emits, priced 0 (Davies) to 69.3 pJ (SANA-FE) apart from its update
    assert ledger["spike_out"] == sim.counts.spikes / len(small_task.y_test) > 0
    spike_out = preset.ops["spike_out"]
    assert (spike_out.value, spike_out.high) == (0.0, 69.3)
    assert math.isclose(rep.high_j - price(dataclasses.replace(
        r.ledger, totals={k: v for k, v in r.ledger.totals.items() if k != "spike_out"}),
        preset).high_j, ledger["spike_out"] * 69.3e-12, rel_tol=1e-9)
    dynamic = (ledger["synop"] * 23.6 + ledger["neuron_update"] * 81 + ledger["neuron_update_idle"] * 52
               + ledger["spike_local"] * 1.7 + ledger["spike_hop"] * 3.5
               + ledger["input_spike"] * preset.ops["input_spike"].value
               + ledger["host_transfer_byte"] * preset.ops["host_transfer_byte"].value) * 1e-12
    latency = 6 * preset.ops["chip_timestep"].time_s
    assert math.isclose(rep.latency_s, latency, rel_tol=1e-12)
    assert math.isclose(rep.energy_j, dynamic + preset.static_power_w * latency, rel_tol=1e-12)
    assert set(rep.breakdown_j) == {"synop", "neuron_update", "neuron_update_idle", "spike_local",
                                    "spike_out", "spike_hop", "chip_timestep", "input_spike",
                                    "host_transfer_byte", "static"}


def test_ternary_and_symmetric_quantizers():
    torch.manual_seed(0)
    w = torch.randn(5, 40)
    t = ternarize_rows(w)
    for row, orig in zip(t, w, strict=True):
        vals = set(torch.unique(row.abs()).tolist()) - {0.0}
        assert len(vals) == 1  # one magnitude per neuron
        assert (torch.sign(row[row != 0]) == torch.sign(orig[row != 0])).all()
    q = quantize_symmetric(w, 7)
    assert len(torch.unique(q)) <= 15 and torch.isclose(q.abs().max(), w.abs().max())


def test_truenorth_limits(small_task, digits_task):
    with pytest.raises(ConfigError, match="beta"):
        TrueNorth(beta=0.9)
    with pytest.raises(ConfigError, match="ternary"):
        TrueNorth(weight_bits=4)
    sim = TrueNorth(**{**FAST, "hidden": (200, 10)}, qat_epochs=0)
    big = Task("big", np.zeros((4, 16, 16), np.float32), np.arange(4) % 2,
               np.zeros((2, 16, 16), np.float32), np.array([0, 1]), 2)
    with pytest.raises(IncompatibleError, match="128"):
        sim.check_task(big)  # 256 inputs, two signed axons each, on 256 axons
    # 200 hidden neurons feed the next layer with both signs: 400 axons on one core
    with pytest.raises(IncompatibleError, match="signed input rows"):
        sim.fit(small_task, seed=0)


def test_chip_capacity_and_coding_errors(small_task):
    with pytest.raises(IncompatibleError, match="cores"):
        BrainScaleS2(**{**FAST, "hidden": (600,)}).fit(small_task, seed=0)
    with pytest.raises(ConfigError, match="binary spikes"):
        Loihi(coding="direct")
    with pytest.raises(ConfigError, match="weight_bits"):
        Loihi(weight_bits=12)
    with pytest.raises(ConfigError, match="weight_bits"):
        SpiNNaker2(weight_bits=0)
    with pytest.raises(ConfigError, match="chips"):
        Loihi(chips=0)


def test_inputs_outside_unit_interval_are_refused(small_task):
    bad = Task("bad", small_task.x_train * 3, small_task.y_train, small_task.x_test * 3,
               small_task.y_test, 10)
    with pytest.raises(DataError, match=r"\[0, 1\]"):  # the base class's shared check
        SnnMLP(**FAST).fit(bad)


def test_brainscales2_prices_emulation_time(small_task):
    sim = BrainScaleS2(**FAST, qat_epochs=0).fit(small_task, seed=0)
    r = sim.evaluate(small_task)
    assert dict(r.ledger.per_inference()) == pytest.approx({"emulation_s": 6 * 1e-6})
    assert sim.neurobench.effective_acs > 0
    for layer in sim.network.layers:  # 6-bit magnitudes with a sign
        assert len(torch.unique(layer.weight.detach())) <= 2 * 63 + 1


def test_load_weights_round_trip(small_task, tmp_path):
    from safetensors.torch import save_file

    a = SnnMLP(**FAST).fit(small_task, seed=0)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in a.network.state_dict().items()}, str(path))
    b = SnnMLP(**FAST).load_weights(path, small_task)
    ra, rb = a.evaluate(small_task), b.evaluate(small_task)
    assert ra.accuracy == rb.accuracy and dict(ra.ledger.totals) == dict(rb.ledger.totals)
