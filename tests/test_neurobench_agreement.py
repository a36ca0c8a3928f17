"""nonvon's NeuroBench figures equal the ``neurobench`` package's on the same network and inputs.

Each spiking network is run by nonvon (counted by :class:`~nonvon.simulators.spiking.Counter`)
and, as its snnTorch twin (the same synaptic layers, ``snntorch.Leaky`` neurons, the readout
an integrating ``Leaky`` that never fires), by NeuroBench's ``Benchmark`` on the same input
spikes or analog values. Weights, biases, inputs and ``beta`` are multiples of 1/16, so both
simulations are exact in float32 and fire the same spikes. Under
``NEUROBENCH_CONVENTIONS`` every figure is equal; under nonvon's own conventions the figures
that differ are the ones the conventions name, by exactly what they say. The dense MLP is
counted by :class:`nonvon.workload.WorkloadCounter` beside NeuroBench's ``TorchModel``. The
footprint needs no convention: NeuroBench's ``Footprint`` of nonvon's own module is nonvon's
figure; that of the snnTorch twin adds the buffers of snnTorch's neuron layers.
"""

from __future__ import annotations

import copy
import dataclasses
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
from nonvon.simulators.spiking.counting import Counter  # noqa: E402
from nonvon.simulators.spiking.networks import LIFConfig, spiking_cnn, spiking_mlp  # noqa: E402
from nonvon.workload import (  # noqa: E402
    NEUROBENCH_CONVENTIONS,
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


def _binary(t: torch.Tensor) -> torch.Tensor:
    """Analog values that happen to be 0 or 1 (a black-and-white image)."""
    return (t > 0.5).float()


CASES = {  # network, input shape, coding, input values
    "rate-mlp": (lambda lif: spiking_mlp(48, (24,), 10, lif), (12, 48), "rate", _dyadic),
    "rate-padded-cnn": (lambda lif: spiking_cnn(8, (4, 6), 16, 10, lif, kernel=3), (12, 8, 8), "rate",
                        _dyadic),
    "direct-padded-cnn": (lambda lif: spiking_cnn(8, (4, 6), 16, 10, lif, kernel=3), (12, 8, 8),
                          "direct", _dyadic),
    "direct-binary-mlp": (lambda lif: spiking_mlp(48, (24,), 10, lif), (12, 48), "direct", _binary),
}


@pytest.mark.parametrize("case", list(CASES))
def test_spiking_figures_equal_neurobench(case, seed):
    build, shape, coding, values = CASES[case]
    torch.manual_seed(seed)
    lif = LIFConfig(timesteps=5, beta=0.75, threshold=1.0, coding=coding)
    net = build(lif)
    counts, nb, neuron_buffers = _spiking_case(net, values(torch.rand(*shape)))
    want = _nb_workload(nb)
    assert want["effective_acs"] > 0 and 0 < want["activation_sparsity"] < 1

    got = counts.neurobench(NEUROBENCH_CONVENTIONS).to_dict()
    assert got == pytest.approx(want, rel=1e-12, abs=0)

    # nonvon's own conventions differ exactly where they say
    own = counts.neurobench().to_dict()
    T = lif.timesteps
    if coding == "direct":
        # direct_every_step: the first layer's MACs and dense ops once, not T times
        first = own["effective_macs"]
        assert first > 0
        dense_first = dense_ops_per_sample(net.layers[0], (1, *shape[1:]) if len(shape) == 3
                                           else shape[1:])
        assert want["dense_ops"] - own["dense_ops"] == (T - 1) * dense_first
        # acs_from_input_values: NeuroBench calls an input of 0s and 1s spikes, so ACs
        if values is _binary:
            assert want["effective_macs"] == 0
            assert want["effective_acs"] == pytest.approx(own["effective_acs"] + T * first, rel=1e-12)
            every_step = dataclasses.replace(NEUROBENCH_CONVENTIONS, acs_from_input_values=False)
            assert counts.neurobench(every_step).effective_macs == want["effective_acs"] - own[
                "effective_acs"]
        else:
            assert want["effective_macs"] == pytest.approx(T * first, rel=1e-12)
            assert own["effective_acs"] == want["effective_acs"]
    else:
        assert own["effective_macs"] == want["effective_macs"] == 0
        assert own["effective_acs"] == want["effective_acs"]
        assert own["dense_ops"] == want["dense_ops"]
    # readout_in_sparsity: the readout's n_classes x T silent outputs left out
    spikes = (1 - own["activation_sparsity"]) * counts.spiking_neuron_steps
    readout = counts.readout_updates
    assert math.isclose(1 - spikes / (counts.spiking_neuron_steps + readout),
                        want["activation_sparsity"], rel_tol=1e-12)

    # connection sparsity: NeuroBench rounds to 4 decimals (connection_sparsity_decimals)
    assert connection_sparsity(net.layers, NEUROBENCH_CONVENTIONS) == nb["ConnectionSparsity"] > 0
    assert round(connection_sparsity(net.layers), 4) == nb["ConnectionSparsity"]
    # footprint: NeuroBench's own metric on nonvon's module is nonvon's figure; its figure of
    # the snnTorch twin adds the buffers snnTorch's neuron layers keep (beta, threshold, ...)
    assert Footprint()(TorchModel(net)) == footprint_bytes(net)
    assert neuron_buffers > 0
    assert footprint_bytes(net) + neuron_buffers == nb["Footprint"]


def test_connection_sparsity_rounds_as_neurobench():
    """One zero among 20000 weights: 5e-05, a rounding tie at 4 decimals. NeuroBench divides
    in float32 (just below the tie, so 0.0), where Python's round of the float64 ratio gives
    1e-04; the convention rounds as NeuroBench does, nonvon's default does not round."""
    net = nn.Sequential(nn.Linear(200, 100, bias=False))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].weight[0, 0] = 0
    nb = ConnectionSparsity()(TorchModel(net))
    assert connection_sparsity(net, NEUROBENCH_CONVENTIONS) == nb == 0.0
    assert connection_sparsity(net) == 1 / 20000 != round(1 / 20000, 4)
    with pytest.raises(ValueError, match="connection_sparsity_decimals"):
        dataclasses.replace(NEUROBENCH_CONVENTIONS, connection_sparsity_decimals=-1)


def test_padded_convolution_dense_ops_leave_out_the_padding():
    """A 3x3 'same' convolution over a 4x4 image: per row (and column) of outputs the kernel
    finds 2, 3, 3, 2 real inputs, so 10 x 10 taps per channel pair, not 16 x 9."""
    conv = nn.Conv2d(2, 3, 3, padding=1)
    assert dense_ops_per_sample(conv, (2, 4, 4)) == 2 * 3 * (2 + 3 + 3 + 2) ** 2 < 2 * 3 * 16 * 9


@pytest.mark.parametrize("values", [_dyadic, _binary], ids=["analog", "binary"])
def test_dense_mlp_figures_equal_neurobench(values, seed):
    torch.manual_seed(seed)
    net = mlp(48, (32, 16), 10).eval()
    with torch.no_grad():
        net[1].weight[:4] = 0
    x = values(torch.rand(20, 48))
    figures = {}
    for name, conventions in (("own", None), ("nb", NEUROBENCH_CONVENTIONS)):
        kw = {} if conventions is None else {"conventions": conventions}
        with torch.no_grad(), WorkloadCounter(net, **kw) as wc:
            wc.count_samples(len(x))
            net(x)
        figures[name] = wc.workload.metrics()
    own, got = figures["own"], figures["nb"]
    nb = _neurobench(TorchModel(net), x)
    want = _nb_workload(nb)
    assert got == pytest.approx(want, rel=1e-12, abs=0)
    # nonvon's default: every synaptic op of a non-spiking network is a MAC
    assert own["effective_acs"] == 0 and own["effective_macs"] < own["dense_ops"]
    if values is _binary:  # acs_from_input_values: NeuroBench's first layer sees "spikes"
        assert want["effective_acs"] > 0 and want["effective_macs"] > 0
        assert own["effective_macs"] == pytest.approx(want["effective_macs"] + want["effective_acs"],
                                                      rel=1e-12)
    else:
        assert own == got and want["effective_acs"] == 0
    assert footprint_bytes(net) == nb["Footprint"]
    assert connection_sparsity(net, NEUROBENCH_CONVENTIONS) == nb["ConnectionSparsity"] > 0
