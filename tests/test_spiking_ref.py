"""References for the spiking networks: Brian2 agreement, NIR round trip, DNN-to-SNN conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nonvon.errors import ConfigError
from nonvon.models import mlp, train_classifier
from nonvon.simulators.spiking import LIFConfig, SnnMLP, spiking_cnn, spiking_mlp
from nonvon.simulators.spiking.conversion import activation_scales, convert_mlp


@pytest.fixture(scope="module")
def trained_ann(digits_task):
    torch.manual_seed(0)
    ann = mlp(64, (32, 16), 10)
    train_classifier(ann, digits_task.x_train, digits_task.y_train, epochs=15, batch_size=32,
                     lr=3e-3, seed=0)
    return ann.eval()


def _acc(net, task) -> float:
    with torch.no_grad():
        return float((net(torch.from_numpy(task.x_test)).argmax(1).numpy() == task.y_test).mean())


def test_conversion_normalization_closed_form(trained_ann, digits_task):
    x = torch.from_numpy(digits_task.x_train)
    lam = activation_scales(trained_ann, x, "max")
    net = convert_mlp(trained_ann, digits_task.x_train, 8, (8, 8), "max")
    # the converted weights, run as a ReLU network, give the original activations / lam_l
    h, h_conv = x.flatten(1), x.flatten(1)
    with torch.no_grad():
        for lin, new, scale in zip([m for m in trained_ann if isinstance(m, nn.Linear)], net.layers,
                                   lam, strict=True):
            h, h_conv = lin(h), new(h_conv)
            torch.testing.assert_close(h_conv, h / scale, rtol=1e-5, atol=1e-5)
            h, h_conv = h.relu(), h_conv.relu()
    p = activation_scales(trained_ann, x, "percentile", 99.9)
    assert all(q <= m + 1e-6 for q, m in zip(p[:-1], lam[:-1], strict=True))


def test_converted_snn_approaches_its_ann(trained_ann, digits_task):
    ann_acc = _acc(trained_ann, digits_task)
    accs = {T: _acc(convert_mlp(trained_ann, digits_task.x_train, T, (8, 8), "percentile"), digits_task)
            for T in (2, 64)}
    assert ann_acc > 0.85
    assert accs[64] >= ann_acc - 0.03, (accs, ann_acc)
    assert accs[64] > accs[2]
    net = convert_mlp(trained_ann, digits_task.x_train, 64, (8, 8))
    assert net.lif.beta == 1.0 and net.lif.reset == "subtract" and net.lif.coding == "direct"


def test_conversion_rejects_unsupported_layers():
    with pytest.raises(ConfigError, match="Linear"):
        convert_mlp(nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)), np.zeros((2, 4)),
                    8, (4,))
    with pytest.raises(ConfigError, match="normalization"):
        convert_mlp(nn.Sequential(nn.Linear(4, 2)), np.zeros((2, 4), np.float32), 8, (4,), "median")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyparsing, used by brian2: not ours
@pytest.mark.parametrize("case", ["converted-if", "surrogate-lif-rate"])
def test_brian2_spike_counts_agree(case, trained_ann, digits_task):
    pytest.importorskip("brian2")
    from nonvon.simulators.spiking.brian2_reference import run_brian2

    if case == "converted-if":
        net = convert_mlp(trained_ann, digits_task.x_train, 24, (8, 8))
    else:
        sim = SnnMLP(hidden=(32, 16), timesteps=16, epochs=4, batch_size=32, lr=5e-3).fit(digits_task)
        net = sim.network
    net = net.double()
    x = torch.from_numpy(digits_task.x_test[:12]).double()
    counts, logits = run_brian2(net, x, torch.Generator().manual_seed(4))
    net.generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        ours_logits, rec = net.run(x, record=True)
    ours = [rec.inputs[i + 1].sum(0).numpy() for i in range(len(net.layers) - 1)]
    assert len(counts) == 2 and sum(c.sum() for c in ours) > 50, "exercise real spiking"
    for a, b in zip(counts, ours, strict=True):
        np.testing.assert_array_equal(a, b)  # exact, per neuron and sample
    np.testing.assert_allclose(logits, ours_logits.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_nir_round_trip(kind, tmp_path, seed):
    nir = pytest.importorskip("nir")
    from nonvon.simulators.spiking.nir_io import from_nir, to_nir

    torch.manual_seed(seed)
    if kind == "mlp":
        net = spiking_mlp(16, (12, 8), 3, LIFConfig(timesteps=7, beta=0.85, threshold=0.7,
                                                    reset="zero", coding="rate"), (4, 4))
    else:
        net = spiking_cnn(8, (4, 6), 10, 3, LIFConfig(timesteps=5, beta=1.0, coding="direct"), kernel=3)
    graph = to_nir(net)
    assert {type(n).__name__ for n in graph.nodes.values()} >= {"Input", "Affine", "I", "Output"}
    path = tmp_path / "net.nir"
    nir.write(str(path), graph)
    back = from_nir(nir.read(str(path)))
    assert back.lif == net.lif and back.input_shape == net.input_shape
    x = torch.rand(6, *net.input_shape)
    outs = []
    for n in (net, back):
        n.generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            outs.append(n.run(x, record=True))
    assert torch.equal(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1].inputs, outs[1][1].inputs, strict=True):
        assert torch.equal(a, b)


def test_nir_lif_time_constant_convention():
    pytest.importorskip("nir")
    from nonvon.simulators.spiking.nir_io import DT, to_nir

    net = spiking_mlp(4, (3,), 2, LIFConfig(timesteps=3, beta=0.9))
    node = to_nir(net).nodes["lif0"]
    # forward Euler of tau dv/dt = -v + R I over dt: v <- (1 - dt/tau) v + (dt R / tau) I
    np.testing.assert_allclose(1 - DT / node.tau, 0.9, rtol=1e-12)
    np.testing.assert_allclose(DT * node.r / node.tau, 1.0, rtol=1e-12)
