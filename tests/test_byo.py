"""Bring your own network (issue #21): nonvon.load_network and the four importers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import nonvon
from nonvon.errors import ConfigError, IncompatibleError, NonvonError

ROOT = Path(__file__).resolve().parents[1]
# snnTorch 1.0's export calls nirtorch's deprecated extract_nir_graph: third-party noise
pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")


@pytest.fixture(scope="module")
def task():
    return nonvon.registry().task("digits").subset(300, 60, seed=0)


class _Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)) + x)


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU6(), _Block(4),
                         nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Flatten(), nn.LayerNorm(16),
                         nn.Dropout(0.2), nn.Linear(16, 10)).eval()


# -- dispatch ---------------------------------------------------------------------------------
def test_every_ecosystem_has_an_importer():
    assert {"torch", "nir", "qiskit", "torchhd"} <= set(nonvon.importers.importers())


def test_nothing_takes_a_string_of_an_unknown_kind(tmp_path):
    path = tmp_path / "net.xyz"
    path.write_text("x")
    with pytest.raises(ConfigError, match="no importer takes file") as e:
        nonvon.load_network(str(path))
    assert "torch" in e.value.hint and "nir" in e.value.hint
    with pytest.raises(ConfigError, match="no file"):
        nonvon.load_network(str(tmp_path / "absent.nir"))


# -- torch ------------------------------------------------------------------------------------
def test_torch_macs_agree_with_flop_counter(task):
    from torch.utils.flop_counter import FlopCounterMode

    net = _cnn()
    result = nonvon.load_network(net, device="cmos-7nm").evaluate(task)
    x = torch.from_numpy(task.x_test).unsqueeze(1)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x)
    # FlopCounterMode counts 2 flops per multiply-accumulate of matmuls and convolutions
    assert result.ledger.totals["mac_fp32"] * 2 == fc.get_total_flops() + 2 * 16 * len(x)  # LayerNorm
    assert result.energy.preset == "cmos-7nm" and result.energy.energy_j > 0


def test_torch_counts_what_the_forward_does_outside_layers(task):
    net = _cnn()
    led = nonvon.load_network(net, device="gpu-h100").evaluate(task).ledger.per_inference()
    block_out = 4 * 8 * 8
    # one residual add and one F.relu per block output element, beside the layers' own
    plain = nn.Sequential(*[m for m in _cnn() if not isinstance(m, _Block)]).eval()
    led_plain = nonvon.load_network(plain, device="gpu-h100").evaluate(task).ledger.per_inference()
    extra_cmp = led["cmp_fp32"] - led_plain["cmp_fp32"]
    assert extra_cmp == block_out  # F.relu (the conv, BN and add are counted as add/mul/mac)
    assert led["mac_fp32"] - led_plain["mac_fp32"] == block_out * 4 * 9


def test_torch_prediction_is_the_module_argmax(task):
    net = _cnn()
    sim = nonvon.load_network(net, device="gpu-h100", preset=None)
    result = sim.evaluate(task)
    with torch.no_grad():
        want = net(torch.from_numpy(task.x_test).unsqueeze(1)).argmax(1).numpy()
    assert result.energy is None and result.accuracy == float(np.mean(want == task.y_test))


@pytest.mark.parametrize("layer,hint", [(nn.GELU(), "ReLU"), (nn.Upsample(scale_factor=2), "LAYER_RULES")])
def test_torch_unsupported_layer_is_named_before_any_work(layer, hint):
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), layer)
    with pytest.raises(ConfigError, match=f"layer '2'.*{type(layer).__name__}") as e:
        nonvon.load_network(net, device="gpu-h100")
    assert hint in e.value.hint


def test_torch_unsupported_function_in_forward_is_named(task):
    class Sig(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            return torch.sigmoid(self.fc(x.flatten(1)))

    sim = nonvon.load_network(Sig(), device="gpu-h100")
    with pytest.raises(ConfigError, match="'sigmoid'"):
        sim.fit(task)


def test_torch_refuses_a_spiking_neuron_with_the_nir_route():
    snn = pytest.importorskip("snntorch")
    net = nn.Sequential(nn.Linear(64, 10), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(ConfigError, match="Leaky") as e:
        nonvon.load_network(net, device="gpu-h100")
    assert "NIR" in e.value.hint


# -- NIR --------------------------------------------------------------------------------------
def _snntorch_net():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(1)

    def leaky(n, beta, thr, **kw):
        return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.full((n,), thr),
                         init_hidden=True, reset_mechanism="zero", **kw)

    net = nn.Sequential(nn.Linear(64, 32), leaky(32, 0.9, 0.5), nn.Linear(32, 10),
                        leaky(10, 0.8, 0.3, output=True))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(3)
    return net


def _snntorch_spikes(net, inputs):
    from snntorch import utils

    utils.reset(net)
    hidden, out = [], []
    with torch.no_grad():
        for t in range(len(inputs)):
            cur = net[0](inputs[t])
            s1 = net[1](cur)
            s2, _ = net[3](net[2](s1))
            hidden.append(s1)
            out.append(s2)
    return torch.stack(hidden), torch.stack(out)


@pytest.mark.parametrize("coding", ["direct", "rate"])
def test_nir_spike_counts_equal_snntorch(task, coding):
    pytest.importorskip("nirtorch", reason="snntorch.export_to_nir needs nirtorch")
    from snntorch.export_nir import export_to_nir

    from nonvon.simulators.spiking.coding import encode

    net = _snntorch_net()
    graph = export_to_nir(net, torch.zeros(64))
    T = 12
    sim = nonvon.load_network(graph, device="snn-mlp", timesteps=T, coding=coding)
    result = sim.evaluate(task)
    x = torch.from_numpy(task.x_test).flatten(1)
    inputs = encode(x, T, coding, generator=torch.Generator().manual_seed(0))
    hidden, out = _snntorch_spikes(net, inputs)
    assert hidden.sum() > 0 and out.sum() > 0  # the comparison means something
    assert sim.counts.spikes == int(hidden.sum() + out.sum())
    assert result.accuracy == float(np.mean(out.sum(0).argmax(1).numpy() == task.y_test))
    rec = sim.network.run(torch.from_numpy(task.x_test[:5]), record=True)[1] if coding == "direct" else None
    if rec is not None:
        assert torch.equal(rec.inputs[1].sum(0), hidden[:, :5].sum(0))


def test_nir_round_trip_of_nonvons_own_export(task):
    pytest.importorskip("nir")
    from nonvon.simulators.spiking import LIFConfig, spiking_mlp, to_nir

    torch.manual_seed(0)
    net = spiking_mlp(64, (24,), 10, LIFConfig(timesteps=5, beta=0.85, threshold=0.4,
                                               coding="direct"), (8, 8))
    with torch.no_grad():
        net.layers[0].weight.mul_(4)
    sim = nonvon.load_network(to_nir(net), device="snn-mlp")  # T, coding, reset from the graph
    result = sim.evaluate(task)
    with torch.no_grad():
        want = net(torch.from_numpy(task.x_test)).argmax(1).numpy()
    assert sim.config.timesteps == 5 and sim.config.reset == "subtract"
    assert result.accuracy == float(np.mean(want == task.y_test))
    assert sim.counts.spikes > 0


def _graph(neuron):
    nir = pytest.importorskip("nir")
    rng = np.random.default_rng(0)
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([64])),
        "fc1": nir.Affine(weight=rng.normal(size=(16, 64)), bias=np.zeros(16)),
        "lif1": neuron,
        "fc2": nir.Affine(weight=rng.normal(size=(10, 16)), bias=np.zeros(10)),
        "out": nir.I(r=np.full(10, 1e4)),
        "output": nir.Output(output_type=np.array([10]))},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "out"), ("out", "output")])


def _lif(tau=1e-3, thr=1.0, n=16):
    import nir

    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / 1e-4), v_leak=np.zeros(n),
                   v_threshold=np.full(n, thr), v_reset=np.zeros(n))


def test_nir_file_on_a_chip_reads_neuron_parameters(task, tmp_path):
    nir = pytest.importorskip("nir")
    path = tmp_path / "net.nir"
    nir.write(path, _graph(_lif(tau=5e-4, thr=0.7)))
    sim = nonvon.load_network(str(path), device="loihi", timesteps=6)
    assert sim.network is None and sim.config.threshold == pytest.approx(0.7)
    result = sim.evaluate(task)
    beta = sim.network.populations[0].beta  # 1 - dt / tau = 0.8, on Loihi's 12-bit decay grid
    assert beta != 0.8 and beta == 1 - round(0.2 * 4096) / 4096
    assert result.energy.preset == "loihi" and result.precision == "int8"
    assert result.ledger.totals["synop"] > 0


def test_nir_bad_nodes_and_chip_limits_are_named():
    nir = pytest.importorskip("nir")
    cuba = nir.CubaLIF(tau_syn=np.full(16, 1e-3), tau_mem=np.full(16, 1e-3), r=np.full(16, 10.0),
                       v_leak=np.zeros(16), v_threshold=np.ones(16))
    with pytest.raises(IncompatibleError, match="'lif1' is a CubaLIF"):
        nonvon.load_network(_graph(cuba), device="loihi")
    with pytest.raises(IncompatibleError, match="'lif1' has per-neuron thresholds"):
        lif = _lif()
        lif.v_threshold[3] = 2.0
        nonvon.load_network(_graph(lif), device="loihi")
    with pytest.raises(IncompatibleError, match="truenorth: NIR node 'lif1' decays"):
        nonvon.load_network(_graph(_lif()), device="truenorth")
    with pytest.raises(ConfigError, match="routes binary spikes"):
        nonvon.load_network(_graph(_lif()), device="loihi", coding="direct")
    with pytest.raises(ConfigError, match="not a spiking simulator"):
        nonvon.load_network(_graph(_lif()), device="gpu-mlp")


# -- qiskit -----------------------------------------------------------------------------------
def _circuit(n=4):
    pytest.importorskip("qiskit")
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    x = ParameterVector("x", n)
    qc = QuantumCircuit(n, name="tiny")
    for q in range(n):
        qc.ry(x[q], q)
    for q in range(n - 1):
        qc.cz(q, q + 1)
    qc.rx(0.25, 0)
    qc.measure_all()
    return qc


def test_qasm3_file_prices_as_the_circuit(task, tmp_path):
    from qiskit import qasm3

    small = task.select_classes(0, 1)
    qc = _circuit(4)
    qc2 = qc.remove_final_measurements(inplace=False)
    qc2.measure_all()
    from qiskit import ClassicalRegister

    one = qc.remove_final_measurements(inplace=False)
    one.add_register(ClassicalRegister(1, "c"))
    one.measure(0, 0)
    path = tmp_path / "c.qasm"
    path.write_text(qasm3.dumps(one))
    a = nonvon.load_network(one, device="qpu-superconducting", shots=64).evaluate(small)
    b = nonvon.load_network(str(path), device="qpu-superconducting", shots=64).evaluate(small)
    assert a.accuracy == b.accuracy and a.ledger.totals == b.ledger.totals
    assert a.ledger.totals["qpu_shot"] == 64 * len(small.y_test)
    assert a.energy.preset == "qpu-superconducting" and a.energy.energy_j > 0


def test_qiskit_unsupported_gate_is_named():
    from qiskit.circuit.library import QFTGate

    qc = _circuit(3)
    qc.remove_final_measurements()
    qc.append(QFTGate(3), [0, 1, 2])
    qc.measure_all()
    with pytest.raises(IncompatibleError, match="gate 'qft'.*not supported") as e:
        nonvon.load_network(qc, device="qpu-superconducting")
    assert "transpile" in e.value.hint


def test_qiskit_readout_must_match_the_classes(task):
    sim = nonvon.load_network(_circuit(4), device="qpu-superconducting", shots=8)
    with pytest.raises(IncompatibleError, match="reads out 4 qubits"):
        sim.evaluate(task)


# -- torchhd ----------------------------------------------------------------------------------
def _hd(task, d=1024, sign=True):
    torchhd = pytest.importorskip("torchhd")
    torch.manual_seed(0)
    enc = torchhd.embeddings.Projection(64, d)
    if sign:
        enc.weight.data = enc.weight.data.sign()
    cen = torchhd.models.Centroid(d, 10)
    codes = torch.round(torch.from_numpy(task.x_train).flatten(1) * 255)
    with torch.no_grad():
        cen.weight.index_add_(0, torch.from_numpy(task.y_train), torchhd.normalize(enc(codes)))
    return enc, cen


@pytest.mark.parametrize("binary,device", [(True, "hdc-asic-28nm"), (False, "hdc-cmos-45nm")])
def test_torchhd_labels_equal_torchhds(task, binary, device):
    enc, cen = _hd(task)
    sim = nonvon.load_network((enc, cen), device=device, binary=binary)
    result = sim.evaluate(task)
    want = sim.predict_torchhd(enc, cen, task.x_test)
    assert result.accuracy == float(np.mean(want == task.y_test)) > 0.5
    kinds = set(result.ledger.totals)
    assert ("xor_bit" in kinds) == binary and result.precision == ("binary" if binary else "fp32")


def test_torchhd_float_projection_is_refused(task):
    enc, cen = _hd(task, sign=False)
    with pytest.raises(IncompatibleError, match="not bipolar") as e:
        nonvon.load_network((enc, cen), device="hdc-asic-28nm")
    assert "sign()" in e.value.hint


def test_errors_are_nonvon_errors():
    assert issubclass(IncompatibleError, NonvonError) and issubclass(ConfigError, NonvonError)


# -- the example ------------------------------------------------------------------------------
@pytest.mark.slow
def test_bring_your_own_example_runs():
    pytest.importorskip("nirtorch", reason="snntorch.export_to_nir needs nirtorch")
    out = subprocess.run([sys.executable, str(ROOT / "docs/examples/bring_your_own.py")],
                         capture_output=True, text=True, timeout=240, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(summary) == {"snntorch (NIR) on loihi", "torch CNN on cmos-7nm", "torch CNN on gpu-h100",
                            "qiskit circuit on qpu-superconducting", "torchhd on hdc-asic-28nm"}
    for label, row in summary.items():
        assert row["energy_per_inference_j"] > 0
        if "qiskit" not in label:  # the example's circuit is untrained
            assert row["accuracy"] > 0.5, label
