"""GPU baseline: op counts against closed forms, config validation, measured-energy plumbing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from nonvon.errors import ConfigError
from nonvon.simulators.gpu import GpuCNN, GpuConfig, GpuMLP, OpCounter


def mlp_analytic(n_in: int, hidden: tuple[int, ...], n_out: int, n: int, batch: int) -> dict[str, int]:
    """Closed-form op counts of an MLP evaluated on n samples in batches of ``batch``."""
    widths = (n_in, *hidden, n_out)
    macs = n * sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    adds = n * sum(widths[1:])                        # biases
    cmps = n * sum(hidden) + n * (n_out - 1)          # ReLUs + argmax
    n_batches = -(-n // batch)
    layers = 2 * len(hidden) + 1                      # Linear and ReLU kernels
    weights = sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))
    acts = n * (sum(2 * w for w in widths[1:-1]) * 2 + widths[0] + widths[-1])  # in+out per kernel
    sram = 4 * (acts + weights * n_batches) + 4 * n * n_out + 8 * n  # + argmax read/write
    host = 4 * n * (n_in + n_out)                     # inputs in, class scores out
    return {"mac_fp32": macs, "add_fp32": adds, "cmp_fp32": cmps,
            "kernel_launch": n_batches * (layers + 1), "sram_byte": sram, "host_transfer_byte": host}


def test_mlp_ledger_matches_analytic_count(digits_task):
    hidden, batch = (32, 16), 64
    sim = GpuMLP(hidden=hidden, epochs=1, eval_batch_size=batch, device="cpu").fit(digits_task, seed=0)
    result = sim.evaluate(digits_task, limit=150)  # 150 = 2 full batches + a partial one
    assert dict(result.ledger.totals) == mlp_analytic(64, hidden, 10, 150, batch)
    assert result.ledger.n_inferences == 150
    # resident: the fp32 weights + the largest layer call's input and output (a full batch
    # through the first Linear: 64 inputs in, 32 out)
    weights = 4 * (64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10)
    assert result.ledger.resident_bytes == weights + 4 * batch * (64 + 32)


def test_cnn_macs_match_closed_form(digits_task):
    sim = GpuCNN(channels=(4, 6), dense=12, epochs=1, device="cpu").fit(digits_task, seed=0)
    n = 40
    ledger = sim.evaluate(digits_task, limit=n).ledger
    # 8x8 input, 5x5 'same' convs: 8x8x4 outputs of 1x25 taps, then 4x4x6 outputs of 4x25 taps
    conv = 8 * 8 * 4 * 25 + 4 * 4 * 6 * 4 * 25
    dense = (2 * 2 * 6) * 12 + 12 * 10
    assert ledger.totals["mac_fp32"] == n * (conv + dense)
    # ReLUs, 2x2 max-pool (3 compares per output), argmax
    cmps = (8 * 8 * 4 + 4 * 4 * 6 + 12) + 3 * (4 * 4 * 4 + 2 * 2 * 6) + 9
    assert ledger.totals["cmp_fp32"] == n * cmps


def test_bf16_inference_counts_bf16_ops(digits_task):
    fp32 = GpuMLP(hidden=(32,), epochs=15, batch_size=32, device="cpu").fit(digits_task, seed=0)
    bf16 = GpuMLP(hidden=(32,), epochs=15, batch_size=32, dtype="bf16", device="cpu").fit(digits_task, seed=0)
    result = bf16.evaluate(digits_task)
    assert set(result.ledger.totals) == {"mac_bf16", "add_bf16", "cmp_bf16", "sram_byte",
                                         "kernel_launch", "host_transfer_byte"}
    ref = fp32.evaluate(digits_task)
    assert result.accuracy > 0.8 and abs(result.accuracy - ref.accuracy) <= 0.03
    # half the bytes per activation and weight, on chip and over the host link
    assert result.ledger.totals["sram_byte"] < 0.6 * ref.ledger.totals["sram_byte"]
    assert result.ledger.totals["host_transfer_byte"] == 0.5 * ref.ledger.totals["host_transfer_byte"]
    assert result.ledger.resident_bytes == 0.5 * ref.ledger.resident_bytes
    # the network is returned to fp32 for further training
    assert next(bf16.network.parameters()).dtype == torch.float32


def test_uncounted_layer_is_an_error():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    with OpCounter(model) as counter, pytest.raises(ConfigError, match="no op counter for layer Tanh"):
        model(torch.zeros(2, 4))
    assert not counter._handles, "hooks must be removed on error"


@pytest.mark.parametrize("bad", [
    {"model": "transformer"}, {"dtype": "int4"}, {"dtype": "fp16"}, {"epochs": 0}, {"lr": -1.0},
    {"hidden": (0,)}, {"dropout": 1.0}, {"device": "tpu"}, {"batch_size": 2.5},
])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        GpuConfig(**bad)


def test_cnn_refuses_feature_vectors(digits_task):
    from nonvon.errors import IncompatibleError

    with pytest.raises(IncompatibleError, match="image"):
        GpuCNN(epochs=1).fit(digits_task.pca(10))


def test_cuda_request_without_cuda_is_a_clear_error(digits_task):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA device"):
        GpuMLP(epochs=1, device="cuda").fit(digits_task)


def test_measurements_reported_as_rows(digits_task, monkeypatch):
    """The NVML path, with the counter faked (real measurement needs an NVIDIA GPU)."""
    import nonvon.energy_models.nvml as nvml

    calls, idles = [], []

    def fake_measure(run, batch_size, *, sync, idle_w):
        idles.append(idle_w)
        run()
        calls.append(batch_size)
        return {"energy_per_inference_j": 1e-6 / batch_size, "latency_per_inference_s": 1e-5,
                "batch_size": batch_size}

    monkeypatch.setattr(nvml, "measure_gpu_energy", fake_measure)
    monkeypatch.setattr(nvml, "measure_idle_power", lambda: idles.append("read") or 55.0)
    sim = GpuMLP(hidden=(8,), epochs=1, device="cpu", measure_batches=(1, 300))
    sim.fit(digits_task)
    monkeypatch.setattr(type(sim), "measures_hardware", property(lambda self: True))
    result = sim.evaluate(digits_task)
    # 300 > 200 test samples: the batch repeats the test set; each batch size is measured
    # with TF32 off (as priced) and on
    assert calls == [1, 1, 300, 300]
    # idle power is read once for the cell, then subtracted in each of its measurements
    assert idles == ["read", 55.0, 55.0, 55.0, 55.0]
    rows = result.measured_rows()
    assert [(r["batch_size"], r["preset"]) for r in rows] == [
        (1, "nvml-fp32-b1"), (1, "nvml-tf32-b1"), (300, "nvml-fp32-b300"), (300, "nvml-tf32-b300")]
    assert rows[2]["energy_per_inference_j"] == pytest.approx(1e-6 / 300)
    assert all(r["kind"] == "measured" for r in rows)


def test_config_roundtrips_through_result(digits_task):
    sim = GpuMLP(hidden=(8,), epochs=1).fit(digits_task)
    cfg = sim.evaluate(digits_task).config
    assert GpuConfig(**cfg) == dataclasses.replace(sim.config)
    assert np.isfinite(sim.n_params) and sim.n_params == 64 * 8 + 8 + 8 * 10 + 10


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_macs_agree_with_torch_flop_counter(model, digits_task):
    """Cross-check against PyTorch's own FlopCounterMode (2 FLOP per MAC for mm and conv)."""
    from torch.utils.flop_counter import FlopCounterMode

    sim = GpuMLP(hidden=(24,), epochs=1) if model == "mlp" else GpuCNN(channels=(4, 8), dense=16,
                                                                        epochs=1)
    sim.fit(digits_task, seed=0)
    x = torch.from_numpy(digits_task.x_test[:37]).to(sim.device)  # the network's device (CUDA there)
    with FlopCounterMode(display=False) as peer, OpCounter(sim.network) as ours, torch.no_grad():
        sim.network(x)
    assert peer.get_total_flops() == 2 * ours.totals["mac_fp32"] > 0
