"""nonvon's NeuroBench figures equal the ``neurobench`` package's on the same network and inputs.

Each spiking network is run by nonvon (counted by :class:`~nonvon.simulators.spiking.Counter`)
and, as its snnTorch twin (the same synaptic layers, ``snntorch.Leaky`` neurons, the readout
an integrating ``Leaky`` that never fires), by NeuroBench's ``Benchmark`` on the same input
spikes or analog values. Weights, biases, inputs and ``beta`` are multiples of 1/16, so both
simulations are exact in float32 and fire the same spikes. Under
``NEUROBENCH_CONVENTIONS`` every workload figure is equal; under nonvon's own conventions the
two that differ are the ones the conventions name. The dense MLP is counted by
:class:`nonvon.workload.WorkloadCounter` beside NeuroBench's ``TorchModel``.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

pytest.importorskip("neurobench", reason="the NeuroBench agreement needs the neurobench package "
                    "(pip install -e '.[test]')")
snn = pytest.importorskip("snntorch")

from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.static import ConnectionSparsity, Footprint  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: E402
from neurobench.models import SNNTorchModel, TorchModel  # noqa: E402

from nonvon.models import mlp  # noqa: E402
from nonvon.simulators.spiking.coding import encode  # noqa: E402
from nonvon.simulators.spiking.counting import NEUROBENCH_CONVENTIONS, Counter  # noqa: E402
from nonvon.simulators.spiking.networks import LIFConfig, spiking_cnn, spiking_mlp  # noqa: E402
from nonvon.workload import (  # noqa: E402
    WorkloadCounter,
    connection_sparsity,
    dense_ops_per_sample,
    footprint_bytes,
)

METRICS = [[Footprint, ConnectionSparsity], [SynapticOperations, ActivationSparsity]]


def _dyadic(t: torch.Tensor) -> torch.Tensor:
    return torch.round(t * 16) / 16


def _snntorch_twin(net) -> nn.Sequential:
    c, mods = net.lif, []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, nn.Linear) and i and isinstance(net.layers[i - 1], nn.Conv2d):
            mods.append(nn.Flatten())
        mods.append(copy.deepcopy(layer))
        if i < len(net.layers) - 1:
            mods.append(snn.Leaky(beta=c.beta, threshold=c.threshold, reset_mechanism=c.reset,
                                  init_hidden=True))
        else:  # nonvon's readout: an integrator without leak or threshold
            mods.append(snn.Leaky(beta=1.0, threshold=1e30, reset_mechanism="none",
                                  init_hidden=True, output=True))
    return nn.Sequential(*mods)


def _neurobench(model, data: torch.Tensor) -> dict:
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data, torch.zeros(len(data))), batch_size=len(data))
    return Benchmark(model, loader, [], [], METRICS).run(quiet=True)


def _nb_workload(r: dict) -> dict[str, float]:
    ops = r["SynapticOperations"]
    return {"effective_acs": ops["Effective_ACs"], "effective_macs": ops["Effective_MACs"],
            "dense_ops": ops["Dense"], "activation_sparsity": r["ActivationSparsity"]}


def _spiking_case(net, x: torch.Tensor):
    """(nonvon's counts, NeuroBench's results, the bytes of the buffers of the twin's neuron
    layers before it runs) for ``net`` on inputs ``x``."""
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.copy_(_dyadic(layer.weight))
            layer.bias.copy_(_dyadic(layer.bias))
        layer.weight[0, :3] = 0  # a few pruned synapses for the connection sparsity
    net.generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        _, rec = net.run(x, record=True)
    counts = Counter(net).count(rec)
    s = encode(x, net.lif.timesteps, net.lif.coding, generator=torch.Generator().manual_seed(0))
    if x.dim() == 3:  # images: a channel axis for the convolutions
        s = s.unsqueeze(2)
    twin = _snntorch_twin(net)
    neuron_buffers = sum(footprint_bytes(m) for m in twin if isinstance(m, snn.SpikingNeuron))
    return counts, _neurobench(SNNTorchModel(twin), s.transpose(0, 1).contiguous()), neuron_buffers


CASES = {
    "rate-mlp": (lambda lif: spiking_mlp(48, (24,), 10, lif), (12, 48), "rate"),
    "rate-padded-cnn": (lambda lif: spiking_cnn(8, (4, 6), 16, 10, lif, kernel=3), (12, 8, 8), "rate"),
    "direct-padded-cnn": (lambda lif: spiking_cnn(8, (4, 6), 16, 10, lif, kernel=3), (12, 8, 8),
                          "direct"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_spiking_figures_equal_neurobench(case, seed):
    build, shape, coding = CASES[case]
    torch.manual_seed(seed)
    lif = LIFConfig(timesteps=5, beta=0.75, threshold=1.0, coding=coding)
    net = build(lif)
    counts, nb, neuron_buffers = _spiking_case(net, _dyadic(torch.rand(*shape)))
    want = _nb_workload(nb)
    assert want["effective_acs"] > 0 and 0 < want["activation_sparsity"] < 1

    got = counts.neurobench(NEUROBENCH_CONVENTIONS).to_dict()
    assert got == pytest.approx(want, rel=1e-12, abs=0)

    # nonvon's own conventions differ exactly where they say
    own = counts.neurobench().to_dict()
    T = lif.timesteps
    assert own["effective_acs"] == want["effective_acs"]
    if coding == "direct":
        assert want["effective_macs"] > 0
        assert own["effective_macs"] * T == want["effective_macs"]
        first = dense_ops_per_sample(net.layers[0], (1, *shape[1:]))
        assert want["dense_ops"] - own["dense_ops"] == (T - 1) * first
    else:
        assert own["effective_macs"] == want["effective_macs"] == 0
        assert own["dense_ops"] == want["dense_ops"]
    spikes = (1 - own["activation_sparsity"]) * counts.spiking_neuron_steps
    readout = counts.readout_updates
    assert math.isclose(1 - spikes / (counts.spiking_neuron_steps + readout),
                        want["activation_sparsity"], rel_tol=1e-12)

    # static figures: connection sparsity as NeuroBench rounds it; the footprint differs by the
    # buffers snnTorch's neuron layers keep (beta, threshold, ...), which are not the network's
    assert round(connection_sparsity(net.layers), 4) == nb["ConnectionSparsity"] > 0
    assert neuron_buffers > 0
    assert footprint_bytes(net) + neuron_buffers == nb["Footprint"]


def test_padded_convolution_dense_ops_leave_out_the_padding():
    """A 3x3 'same' convolution over a 4x4 image: per row (and column) of outputs the kernel
    finds 2, 3, 3, 2 real inputs, so 10 x 10 taps per channel pair, not 16 x 9."""
    conv = nn.Conv2d(2, 3, 3, padding=1)
    assert dense_ops_per_sample(conv, (2, 4, 4)) == 2 * 3 * (2 + 3 + 3 + 2) ** 2 < 2 * 3 * 16 * 9


def test_dense_mlp_figures_equal_neurobench(seed):
    torch.manual_seed(seed)
    net = mlp(48, (32, 16), 10).eval()
    with torch.no_grad():
        net[1].weight[:4] = 0
    x = _dyadic(torch.rand(20, 48))
    with torch.no_grad(), WorkloadCounter(net) as wc:
        wc.count_samples(len(x))
        net(x)
    got = wc.workload.metrics()
    nb = _neurobench(TorchModel(net), x)
    assert got == pytest.approx(_nb_workload(nb), rel=1e-12, abs=0)
    assert got["effective_macs"] < got["dense_ops"] and got["effective_acs"] == 0
    assert footprint_bytes(net) == nb["Footprint"]
    assert round(connection_sparsity(net), 4) == nb["ConnectionSparsity"] > 0
