"""The matched-precision digital baseline (DESIGN.md 2b): the dense ANN at int8 and bf16, its
counting at that precision, its memory placement and io, and the chip-boundary npu presets."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pytest
import torch

from nonvon.energy_models import OpLedger, load_preset, price
from nonvon.energy_models.presets import PRESET_DIR
from nonvon.errors import ConfigError
from nonvon.simulators.gpu import GpuCNN, GpuCNNInt8, GpuMLP, GpuMLPBf16, GpuMLPInt8
from nonvon.simulators.gpu.quantize import INT8_MAX, QuantLinear, int8_matmul, quantize_input
from nonvon.simulators.gpu.simulator import matmul_precision

MLP = {"hidden": (32,), "epochs": 15, "batch_size": 32, "device": "cpu"}
NPUS = ("npu-45nm", "npu-7nm")


@functools.cache
def preset(name: str):
    return load_preset(PRESET_DIR / f"{name}.toml")


@pytest.fixture(scope="module")
def trained(digits_task):
    """The same MLP trained once per precision (the fp32 training is identical for all)."""
    return {dt: cls(**MLP).fit(digits_task, seed=0)
            for dt, cls in (("fp32", GpuMLP), ("bf16", GpuMLPBf16), ("int8", GpuMLPInt8))}


# -- accuracy is measured, and close to fp32 ---------------------------------------

@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_low_precision_accuracy_is_measured_and_close_to_fp32(trained, digits_task, dtype):
    ref = trained["fp32"].evaluate(digits_task)
    res = trained[dtype].evaluate(digits_task)
    assert res.precision == dtype and ref.precision == "fp32"
    assert ref.accuracy > 0.8
    # 200 test digits: 2 pp is 4 images; the quantized network must not lose more
    assert abs(res.accuracy - ref.accuracy) <= 0.02, (dtype, res.accuracy, ref.accuracy)


# -- the int8 path runs on the integer grid ------------------------------------------

def test_int8_weights_are_on_an_integer_grid_with_per_channel_scales(trained):
    sim = trained["int8"]
    fp32_layers = [m for m in sim.network if isinstance(m, torch.nn.Linear)]
    q_layers = [m for m in sim.int8_network if isinstance(m, QuantLinear)]
    assert len(q_layers) == len(fp32_layers) == 2
    for fp, q in zip(fp32_layers, q_layers, strict=True):
        assert q.weight_q.dtype == torch.int8 and q.weight_q.abs().max() <= INT8_MAX
        assert q.bias_q.dtype == torch.int32
        # per output channel: each row's largest weight maps to +-127
        assert torch.equal(q.weight_q.abs().amax(1), torch.full((q.out_channels,), INT8_MAX,
                                                                 dtype=torch.int8))
        dequant = q.weight_q.float() * q.weight_scale[:, None]
        assert torch.all((dequant - fp.weight).abs() <= q.weight_scale[:, None] / 2 + 1e-7)
        assert q.weight_scale.unique().numel() > 1  # the scales really are per channel


def test_int8_inference_equals_an_independent_integer_reference(trained, digits_task):
    """Recompute the int8 MLP with numpy int64 arithmetic only: same logits, bit for bit."""
    qnet = trained["int8"].int8_network
    x = quantize_input(torch.from_numpy(digits_task.x_test).flatten(1), qnet.input_scale)
    assert x.dtype == torch.int8
    h = x.numpy().astype(np.int64)
    layers = [m for m in qnet if isinstance(m, QuantLinear)]
    for i, q in enumerate(layers):
        acc = h @ q.weight_q.numpy().astype(np.int64).T + q.bias_q.numpy().astype(np.int64)
        assert np.abs(acc).max() < 2**31  # the int32 accumulator holds it
        m, s = q.multiplier.numpy().astype(np.int64), q.shift.numpy().astype(np.int64)
        y = (acc * m + (1 << (s - 1))) >> s
        h = np.maximum(np.clip(y, -127, 127), 0) if i < len(layers) - 1 else y
    with torch.no_grad():
        logits = qnet(x)
    assert logits.dtype == torch.int32
    np.testing.assert_array_equal(logits.numpy(), h)
    # and the simulator's labels are the argmax of these integer logits
    labels = trained["int8"]._predict(digits_task.x_test).labels
    np.testing.assert_array_equal(labels, h.argmax(1))


def test_int8_calibration_covers_the_training_data(trained, digits_task):
    qnet = trained["int8"].int8_network
    # digits pixels are in [0, 1] and reach 1: the input scale is max / 127
    assert float(qnet.input_scale) == pytest.approx(float(digits_task.x_train.max()) / INT8_MAX)


def test_int8_ops_are_counted_at_their_precision(trained, digits_task):
    n, hidden, widths = 200, 32, (64, 32, 10)
    ledger = trained["int8"].evaluate(digits_task).ledger
    outs = hidden + 10
    assert dict(ledger.totals) == {
        "mac_int8": n * (64 * 32 + 32 * 10),
        "add_int32": 2 * n * outs,              # bias + requantization rounding
        "mul_int32": n * outs,                  # requantization multiplier
        "cmp_int32": 2 * n * hidden + n * 9,    # saturation of the hidden layer + argmax
        "cmp_int8": n * hidden,                 # ReLU on int8 codes
        # one batch: Linear (int8 in, int8 out, weights), ReLU (in, out), Linear (int8 in, int32
        # out, weights), argmax (int32 scores read, int64 labels written)
        "sram_byte": (n * 64 + n * 32 + 64 * 32 + 32 * 9) + 2 * n * 32
                     + (n * 32 + n * 10 * 4 + 32 * 10 + 10 * 9) + (n * 10 * 4 + n * 8),
        "kernel_launch": 4,
        "host_transfer_byte": n * 64 + n * 10 * 4,  # int8 pixels in, int32 scores out
    }
    weights = sum(a * b + b * 9 for a, b in zip(widths, widths[1:], strict=False))  # int8 + 9 B/ch
    assert ledger.resident_bytes == weights + n * (64 + 32)  # the first layer: int8 in and out


def test_cnn_int8_runs_convolutions_on_the_integer_grid(digits_task):
    sim = GpuCNNInt8(channels=(4, 6), dense=12, epochs=3, batch_size=32, device="cpu")
    res = sim.fit(digits_task, seed=0).evaluate(digits_task, limit=40)
    conv = 8 * 8 * 4 * 25 + 4 * 4 * 6 * 4 * 25
    assert res.ledger.totals["mac_int8"] == 40 * (conv + 2 * 2 * 6 * 12 + 12 * 10)
    assert res.ledger.totals["cmp_int8"] == 40 * ((8 * 8 * 4 + 4 * 4 * 6 + 12)
                                                  + 3 * (4 * 4 * 4 + 2 * 2 * 6))
    assert not any(k.endswith(("fp32", "bf16")) for k in res.ledger.totals)


def test_int8_state_round_trips_with_its_scales(trained, digits_task):
    sim = trained["int8"]
    state = sim.state_tensors()
    assert {"int8.input_scale", "int8.1.weight_scale", "int8.1.multiplier", "int8.1.shift",
            "fp32.1.weight"} <= set(state)
    before = sim.evaluate(digits_task)
    fresh = GpuMLPInt8(**MLP).load_state_tensors(state, digits_task, seed=0)
    after = fresh.evaluate(digits_task)
    assert after.accuracy == before.accuracy and dict(after.ledger.totals) == dict(before.ledger.totals)
    assert after.ledger.resident_bytes == before.ledger.resident_bytes
    # the loaded scales are the ones used: a changed multiplier changes the integer logits
    x = quantize_input(torch.from_numpy(digits_task.x_test).flatten(1), fresh.int8_network.input_scale)
    with torch.no_grad():
        ref = fresh.int8_network(x)
        fresh.int8_network[1].multiplier //= 2
        assert not torch.equal(fresh.int8_network(x), ref)
    with pytest.raises(ConfigError, match="int8"):
        GpuMLPInt8(**MLP).load_state_tensors({k.removeprefix("fp32."): v for k, v in state.items()
                                             if k.startswith("fp32.")}, digits_task)


# -- every GPU-baseline ledger has io and memory ---------------------------------------

@pytest.mark.parametrize("dtype,in_bytes,out_bytes", [("fp32", 4, 4), ("bf16", 2, 2), ("int8", 1, 4)])
def test_every_gpu_ledger_counts_io_and_memory(trained, digits_task, dtype, in_bytes, out_bytes):
    ledger = trained[dtype].evaluate(digits_task, limit=50).ledger
    assert ledger.totals["host_transfer_byte"] == 50 * (64 * in_bytes + 10 * out_bytes)
    assert ledger.totals["sram_byte"] > 0 and "dram_byte" not in ledger.totals
    assert ledger.resident_bytes > 0
    gpu = price(ledger, preset("gpu-h100"))
    assert gpu.energy_by_class_j["io"] > 0 and gpu.energy_by_class_j["memory"] > 0


# -- precision is set and recorded ---------------------------------------------------

def test_fp32_runs_with_tf32_off_and_restores_the_setting():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with matmul_precision("fp32") as settings:
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert settings == {"precision": "fp32", "tf32_matmul": False, "tf32_cudnn": False}
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.parametrize("cls,dtype,expect", [
    (GpuMLP, "float32", [("fp32", False), ("tf32", True)]),  # as priced, then TF32 on beside it
    (GpuMLPBf16, "bfloat16", [("bf16", False)]),
    (GpuMLPInt8, "int8", [("int8", False)]),
])
def test_measurement_records_its_precision(digits_task, monkeypatch, cls, dtype, expect):
    import nonvon.energy_models.nvml as nvml

    seen, idles = [], []

    def fake_measure(run, batch_size, *, sync, idle_w):
        idles.append(idle_w)
        seen.append(torch.backends.cuda.matmul.allow_tf32)
        run()
        return {"energy_per_inference_j": 1e-6, "latency_per_inference_s": 1e-5}

    monkeypatch.setattr(nvml, "measure_gpu_energy", fake_measure)
    monkeypatch.setattr(nvml, "measure_idle_power", lambda: idles.append("read") or 55.0)
    sim = cls(hidden=(8,), epochs=1, device="cpu", measure_batches=(4,)).fit(digits_task)
    monkeypatch.setattr(type(sim), "measures_hardware", property(lambda self: True))
    measured = sim.evaluate(digits_task).measurements
    assert seen == [tf32 for _, tf32 in expect]
    assert [m.label for m in measured] == [f"nvml-{label}-b4" for label, _ in expect]
    for m, (label, tf32) in zip(measured, expect, strict=True):
        assert m.details["precision"] == label and m.details["input_dtype"] == dtype
        assert m.details["tf32_matmul"] is tf32 and m.details["tf32_cudnn"] is tf32
    assert not torch.backends.cuda.matmul.allow_tf32  # restored (the test runner's default)


def test_int8_mlp_is_measured_and_int8_cnn_modelled(monkeypatch):
    import nonvon.energy_models.nvml as nvml

    monkeypatch.setattr(nvml, "nvml_available", lambda: True)
    monkeypatch.setattr(GpuMLP, "device", property(lambda self: torch.device("cuda")))
    assert GpuMLP(epochs=1).measures_hardware and GpuMLPInt8(epochs=1).measures_hardware
    monkeypatch.setattr(GpuCNN, "device", property(lambda self: torch.device("cuda")))
    assert not GpuCNNInt8(epochs=1).measures_hardware  # its convolutions run in float64


@pytest.mark.parametrize("rows,k,n", [(1, 64, 32), (3, 32, 10), (40, 13, 5), (1024, 784, 512)])
def test_int8_tensor_core_matmul_is_exact(rows, k, n):
    """The padded torch._int_mm path the CUDA layers take gives the float64 path's integers."""
    g = torch.Generator().manual_seed(rows + k + n)
    x = torch.randint(-127, 128, (rows, k), dtype=torch.int8, generator=g)
    w = torch.randint(-127, 128, (n, k), dtype=torch.int8, generator=g)
    out = int8_matmul(x, w)
    assert out.dtype == torch.int32 and out.shape == (rows, n)
    assert torch.equal(out.double(), x.double() @ w.double().T)


# -- gpu-h100 prices the precision it runs ------------------------------------------------

def test_gpu_h100_int8_mac_is_the_dense_int8_tensor_rate():
    p = preset("gpu-h100")
    mac = p.ops["mac_int8"]
    dense = 3958e12 / 2  # datasheet: 3,958 TOPS with sparsity, half without
    assert mac.value == pytest.approx(2 * (700 - p.static_power_w) / dense * 1e12, rel=1e-4)
    assert mac.time_s == pytest.approx(2 / dense, rel=1e-4)
    assert mac.value < p.ops["mac_bf16"].value < p.ops["mac_fp32"].value
    # on-chip accesses are priced like HBM (the NVML-calibrated roofline streams via HBM)
    for field in ("value", "low", "high", "time_s", "resource"):
        assert getattr(p.ops["sram_byte"], field) == getattr(p.ops["dram_byte"], field)
    assert p.ops["host_transfer_byte"].time_s == pytest.approx(1 / 64e9)


# -- SRAM by array size on the cmos presets -------------------------------------------

@pytest.mark.parametrize("name,tiers", [("cmos-45nm", (10, 20, 100)), ("cmos-7nm", (7.5, 8.5, 14))])
def test_cmos_sram_is_priced_by_the_array_that_holds_the_data(name, tiers):
    p = preset(name)
    assert p.ops["sram_byte"].low == p.ops["sram_byte"].value == p.ops["sram_byte"].high
    assert p.ops["sram_byte"].value == pytest.approx(tiers[1] / 8)
    for resident, pj64 in ((4000, tiers[0]), (20000, tiers[1]), (900_000, tiers[2]),
                           (5_000_000, tiers[2])):
        r = price(OpLedger({"sram_byte": 1000}, 1, resident_bytes=resident), p)
        assert r.energy_j == pytest.approx(1000 * pj64 / 8 * 1e-12)
    assert p.boundary == "core" and p.onchip_bytes is None


# -- the chip-boundary digital accelerators ---------------------------------------------

@pytest.mark.parametrize("name", NPUS)
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_npu_prices_the_gpu_baseline_at_the_chip_boundary(trained, digits_task, name, dtype):
    p = preset(name)
    assert p.boundary == "chip" and set(p.paradigms) == {"gpu", "spiking", "hdc"}
    ledger = trained[dtype].evaluate(digits_task).ledger
    r = price(ledger, p)
    by = r.energy_by_class_j
    assert by["memory"] > 0 and by["io"] > 0 and by["static"] > 0 and by["compute"] > 0
    assert "interconnect" in p.absent and by["interconnect"] == 0
    assert r.latency_s > 0 and by["static"] == pytest.approx(p.static_power_w * r.latency_s)
    assert r.placement["spilled_fraction"] == 0  # a small MLP fits on chip


@pytest.mark.parametrize("name", NPUS)
def test_int8_costs_less_than_fp32_on_the_same_npu(trained, digits_task, name):
    e = {dt: price(trained[dt].evaluate(digits_task).ledger, preset(name)).energy_by_class_j
         for dt in ("fp32", "int8")}
    assert e["int8"]["compute"] < e["fp32"]["compute"]
    assert e["int8"]["memory"] < e["fp32"]["memory"]


@pytest.mark.parametrize("name", NPUS)
def test_a_network_larger_than_the_chip_spills_to_dram(trained, digits_task, name):
    ledger = trained["int8"].evaluate(digits_task).ledger
    fits = price(ledger, preset(name))
    small = dataclasses.replace(preset(name), onchip_bytes=ledger.resident_bytes / 4)
    spilled = price(ledger, small)
    assert spilled.placement["spilled_fraction"] == pytest.approx(0.75)
    per_inf = ledger.per_inference()["sram_byte"]
    assert spilled.breakdown_j["dram_byte"] == pytest.approx(
        0.75 * per_inf * small.ops["dram_byte"].value * 1e-12)
    assert spilled.energy_by_class_j["memory"] > fits.energy_by_class_j["memory"]
    assert any("spilled" in a for a in spilled.assumptions)


@pytest.mark.parametrize("name", NPUS)
def test_npu_prices_every_kind_of_the_digital_ledgers(reg, name):
    p = preset(name)
    for sim_name in ("gpu-mlp", "gpu-mlp-bf16", "gpu-mlp-int8", "gpu-cnn-int8", "snn-mlp",
                     "snn-cnn", "snn-converted", "snn-ttfs", "hdc-projection", "hdc-idlevel"):
        if sim_name not in reg.simulators:
            continue
        sim = reg.simulator(sim_name)
        assert not p.can_price(sim.op_kinds), (name, sim_name, p.can_price(sim.op_kinds))
        assert sim.paradigm in p.paradigms
    # every kind with a price also has a time on the unit that runs it, except the
    # zero-priced launches: static power is charged over a latency for every ledger
    untimed = sorted(k for k, op in p.ops.items() if op.time_s is None)
    assert untimed == ["kernel_launch"] and p.ops["kernel_launch"].value == 0


def test_npu_mac_int8_accumulates_in_32_bits():
    for name, cmos in (("npu-45nm", "cmos-45nm"), ("npu-7nm", "cmos-7nm")):
        npu, ref = preset(name).ops, preset(cmos).ops
        assert npu["mac_int8"].value == pytest.approx(ref["mul_int8"].value + ref["add_int32"].value)
        assert npu["mac_int8"].low == pytest.approx(ref["mac_int8"].value)
        for kind in ("mac_fp32", "add_int32", "sram_byte", "dram_byte"):
            assert npu[kind].value == ref[kind].value, (name, kind)
    # the array is faster than the vector unit on both
    for name in NPUS:
        ops = preset(name).ops
        assert ops["mac_int8"].time_s < ops["mac_fp32"].time_s
        assert math.isclose(preset(name).static_power_w, preset(name).static_low_w)
