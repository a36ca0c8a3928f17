"""Accounting of the quantum paradigm (issue #17): the classical twin is counted exactly as
gpu-mlp is, the VQC charges host io and host memory, QPU presets price or declare every
class, and a trained state reloads into the same accuracy and ledger."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("qiskit")
pytest.importorskip("jax")

from nonvon.energy_models import OpLedger, price  # noqa: E402
from nonvon.energy_models.catalog import COST_CLASSES  # noqa: E402
from nonvon.errors import ConfigError  # noqa: E402
from nonvon.simulators.gpu.simulator import GpuMLP  # noqa: E402
from nonvon.simulators.quantum import VQC, VQCClassicalTwin  # noqa: E402
from nonvon.simulators.quantum.classical import ClassicalCounter, front_end  # noqa: E402
from nonvon.simulators.quantum.vqc_training import Preprocessor  # noqa: E402

# PCA to 4 angles on 4 qubits, 3 layers: the VQC has 3 x 8 circuit weights + 5 readout
# parameters = 29, so the twin gets 3 hidden units (4 -> 3 -> 4, 31 parameters).
CFG = {"preprocess": "pca", "n_features": 4, "n_qubits": 4, "encoding": "angle", "layers": 3,
       "epochs": 3, "batch_size": 32, "lr": 0.1, "shots": 64, "eval_batch_size": 64}
# The VQC's own tests: two classes on two qubits, which compiles and runs in about 3 s.
VQC_CFG = {**CFG, "n_qubits": 2, "layers": 2, "epochs": 10}
QPU_PRESETS = ("qpu-superconducting", "qpu-trapped-ion")


@pytest.fixture(scope="module")
def task(digits_task):
    return digits_task.select_classes(0, 1, 2, 3)


@pytest.fixture(scope="module")
def task2(digits_task):
    return digits_task.select_classes(0, 1)


@pytest.fixture(scope="module")
def vqc(task2):
    return VQC(**VQC_CFG).fit(task2, seed=0)


@pytest.fixture(scope="module")
def twin(task):
    return VQCClassicalTwin(**CFG).fit(task, seed=0)


def _gpu(**kw) -> GpuMLP:
    return GpuMLP(device="cpu", measure_energy=False, **kw)


# -- the twin is counted by gpu-mlp's counter and rules -------------------------------------
def test_twin_counts_a_network_exactly_as_gpu_mlp(task, twin):
    """The same network through the twin's counting path and through gpu-mlp's: the same
    labels and the very same ledger (every kind, resident bytes included)."""
    gpu = _gpu(hidden=(16,), epochs=1, batch_size=32, eval_batch_size=CFG["eval_batch_size"])
    gpu.fit(task, seed=0)
    twin_path = VQCClassicalTwin(**CFG)
    twin_path.params, twin_path.network = twin.params, gpu.network  # gpu-mlp's trained network
    mine, theirs = twin_path._predict(task.x_test), gpu._predict(task.x_test)
    np.testing.assert_array_equal(mine.labels, theirs.labels)
    assert dict(mine.ledger.totals) == dict(theirs.ledger.totals)
    assert mine.ledger.resident_bytes == theirs.ledger.resident_bytes > 0


def test_twin_ledger_equals_gpu_mlp_with_the_same_layers(task, twin):
    """gpu-mlp holding the twin's weights (the PCA layer and the MLP: Linear sizes and values
    equal) counts the same memory, io and launches; only the activations' arithmetic differs,
    by exactly what the twin's layers do instead of ReLU: the clamp to [0, pi] compares twice
    per feature, tanh is one multiply per hidden unit."""
    f, h = twin.pre.n_out, twin.hidden
    assert h > 0, "this test needs a hidden layer"
    gpu = _gpu(hidden=(f, h), dropout=0.0, eval_batch_size=CFG["eval_batch_size"])
    gpu.load_state_tensors(twin.network.state_dict(), task, seed=0)
    ours, theirs = twin.evaluate(task), gpu.evaluate(task)
    n = ours.n_evaluated
    expect = dict(theirs.ledger.totals)
    expect["cmp_fp32"] += n * f - n * h
    expect["mul_fp32"] = expect.get("mul_fp32", 0) + n * h
    assert dict(ours.ledger.totals) == expect
    assert ours.ledger.resident_bytes == theirs.ledger.resident_bytes
    assert ours.precision == theirs.precision == "fp32"
    for kind in ("sram_byte", "kernel_launch", "host_transfer_byte"):
        assert ours.ledger.totals[kind] > 0


def test_front_end_computes_the_preprocessor_and_counts_it(digits_task):
    """The host layers give pre.transform's angles (to fp32 rounding) in every mode, clip test
    values outside the train range, and count what they compute."""
    x_fit, x = digits_task.x_train[:300], digits_task.x_test[:50]
    for mode, nf, scale in (("pca", 5, "angle"), ("pca", 5, "none"), ("downsample", 4, "angle"),
                            ("none", None, "angle")):
        pre = Preprocessor(mode, nf, scale).fit(x_fit)
        net = torch.nn.Sequential(*front_end(pre))
        counter = ClassicalCounter(net)
        with torch.inference_mode(), counter:
            out = net(torch.from_numpy(3.0 * x)).numpy()  # far outside the train range
        np.testing.assert_allclose(out, pre.transform(3.0 * x), atol=2e-5)
        if scale == "angle":
            assert out.min() >= 0 and out.max() <= np.float32(np.pi)
            assert counter.totals["cmp_fp32"] == 2 * out.size  # the clamp: max, then min
        if mode == "pca":
            assert counter.totals["mac_fp32"] == 50 * 64 * 5
        assert counter.totals["kernel_launch"] >= 1 and counter.totals["sram_byte"] > 0


# -- the VQC's host io and memory ------------------------------------------------------------
def test_vqc_counts_host_transfers_memory_and_precision(task2, vqc):
    res = vqc.evaluate(task2)
    tot, n = res.ledger.totals, res.n_evaluated
    shots, k = VQC_CFG["shots"], len(vqc.model.readout)
    n_in, n_w = len(vqc.model.inputs), len(vqc.model.weights)
    assert tot["host_transfer_byte"] == n * (4 * n_in + math.ceil(shots * k / 8)) + 4 * n_w
    assert tot["qpu_measure"] == n * shots * k and tot["sram_byte"] > 0 and tot["kernel_launch"] > 0
    weights = sum(p.numel() for p in vqc.host_layers.parameters()) * 4
    assert weights < res.ledger.resident_bytes <= weights + 4 * n * (64 + n_in)
    assert res.precision == "analog"


@pytest.mark.parametrize("name", QPU_PRESETS)
def test_vqc_on_each_qpu_preset_charges_every_class(task2, vqc, reg, name):
    """System boundary: io, static and memory > 0; interconnect declared absent with a reason;
    no interim placeholders left."""
    preset = reg.preset(name)
    assert preset.boundary == "system"
    assert not any("INTERIM" in r for r in preset.absent.values())
    rep = vqc.evaluate(task2).priced(preset).energy
    by = rep.energy_by_class_j
    assert set(by) == set(COST_CLASSES)
    assert by["io"] > 0 and by["static"] > 0 and by["compute"] > 0
    assert by["memory"] > 0 or "memory" in preset.absent
    assert by["interconnect"] > 0 or len(preset.absent.get("interconnect", "")) > 40
    assert by["static"] == pytest.approx(preset.static_power_w * rep.latency_s, rel=1e-12)


def test_host_memory_is_placed_by_resident_bytes(reg):
    """A larger host working set is priced at a larger (costlier) SRAM array."""
    preset = reg.preset("qpu-superconducting")
    small, big = (price(OpLedger({"sram_byte": 1000, "qpu_shot": 1}, 1, resident_bytes=rb), preset)
                  for rb in (4_000, 500_000))
    assert big.breakdown_j["sram_byte"] > small.breakdown_j["sram_byte"] > 0


# -- trained state round trips -----------------------------------------------------------------
def _round_trip(cls, cfg, task, sim=None):
    sim = sim or cls(**cfg).fit(task, seed=0)
    trained = sim.evaluate(task)
    state = sim.state_tensors()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    fresh = cls(**cfg).load_state_tensors(state, task, seed=0)
    again = fresh.evaluate(task)
    assert again.accuracy == trained.accuracy
    assert dict(again.ledger.totals) == dict(trained.ledger.totals)
    assert again.ledger.resident_bytes == trained.ledger.resident_bytes
    return state


def test_vqc_state_round_trips(task2, vqc):
    state = _round_trip(VQC, VQC_CFG, task2, vqc)
    assert {"w", "s", "b", "pre.mean", "pre.components", "pre.lo", "pre.hi"} == set(state)


@pytest.mark.parametrize("overrides", [{}, {"preprocess": "downsample", "encoding": "reupload"},
                                       {"encoding": "amplitude", "n_features": 8}],
                         ids=["pca-angle", "downsample-reupload", "pca-amplitude"])
def test_twin_state_round_trips(task, overrides):
    _round_trip(VQCClassicalTwin, {**CFG, **overrides}, task)


def test_loading_a_mismatched_state_is_a_clear_error(task, task2, vqc, twin):
    with pytest.raises(ConfigError, match="do not match"):
        VQC(**{**VQC_CFG, "layers": 1}).load_state_tensors(vqc.state_tensors(), task2)
    with pytest.raises(ConfigError, match="unexpected state tensors"):
        VQC(**VQC_CFG).load_state_tensors({**vqc.state_tensors(), "w1": np.zeros(3)}, task2)
    bad = {k: v for k, v in twin.state_tensors().items() if k != "pre.components"}
    with pytest.raises(ConfigError, match="components"):
        VQCClassicalTwin(**CFG).load_state_tensors(bad, task)
