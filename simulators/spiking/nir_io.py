"""NIR export and import of spiking classifiers (the ``nir`` package).

NIR (Pedersen et al., "Neuromorphic intermediate representation: a unified instruction set
for interoperable brain-inspired computing", Nature Communications 15:8122, 2024) describes
neurons in continuous time. A discrete step of nonvon's LIF, ``m <- beta m + I``, is the
forward-Euler step ``dt`` of NIR's ``LIF`` (``tau dv/dt = (v_leak - v) + R I``) with
``tau = dt / (1 - beta)``, ``R = tau / dt`` and ``v_leak = 0`` -- the convention snnTorch's
NIR export uses; ``beta = 1`` maps to NIR's ``IF`` with ``R = 1 / dt``, and the integrating
readout to NIR's ``I`` (``R = 1 / dt``). Synaptic layers map to ``Affine`` and ``Conv2d``.
NIR has no field for reset by subtraction, the delayed reset, the input coding or ``T``:
they travel in the node and graph ``metadata`` (also ``beta`` itself, so that the round trip
is exact rather than through ``1 - dt / tau``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nonvon.errors import ConfigError
from nonvon.simulators.spiking.networks import LIFConfig, SpikingClassifier

__all__ = ["to_nir", "from_nir", "DT"]

DT = 1e-4  # seconds per step in the exported continuous-time description (as snnTorch)


def to_nir(net: SpikingClassifier, dt: float = DT):
    """Export ``net`` as a ``nir.NIRGraph``."""
    import nir

    c = net.lif
    # the input as the first layer sees it: (C, H, W) for a conv, flattened for a linear one
    nodes: dict = {"input": nir.Input(input_type=np.array(tuple(_in_shape(net, 0))))}
    edges: list[tuple[str, str]] = []
    prev = "input"
    neuron_meta = {"reset": c.reset, "reset_delay": True, "beta": c.beta, "dt": dt}
    for i, layer in enumerate(net.layers):
        w = layer.weight.detach().cpu().numpy()
        b = (layer.bias.detach().cpu().numpy() if layer.bias is not None
             else np.zeros(w.shape[0], dtype=w.dtype))
        if isinstance(layer, nn.Conv2d):
            in_hw = tuple(net._shape_in(i, torch.zeros(1, *_in_shape(net, i)))[0].shape[1:])
            nodes[f"syn{i}"] = nir.Conv2d(input_shape=in_hw, weight=w, stride=layer.stride,
                                          padding=layer.padding, dilation=layer.dilation,
                                          groups=layer.groups, bias=b)
        else:
            if i > 0 and isinstance(net.layers[i - 1], nn.Conv2d):
                shape = tuple(_out_shape(net, i - 1))
                nodes[f"flat{i}"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
                edges.append((prev, f"flat{i}"))
                prev = f"flat{i}"
            nodes[f"syn{i}"] = nir.Affine(weight=w, bias=b)
        edges.append((prev, f"syn{i}"))
        prev = f"syn{i}"
        n = w.shape[0]
        if i == len(net.layers) - 1:
            nodes["readout"] = nir.I(r=np.full(n, 1.0 / dt), metadata={"readout": "mean_over_T"})
            edges.append((prev, "readout"))
            prev = "readout"
            break
        shape = tuple(_out_shape(net, i))
        thr = np.full(shape, c.threshold)
        if c.beta == 1.0:
            node = nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=thr, metadata=dict(neuron_meta))
        else:
            tau = dt / (1.0 - c.beta)
            node = nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / dt),
                           v_leak=np.zeros(shape), v_threshold=thr, metadata=dict(neuron_meta))
        nodes[f"lif{i}"] = node
        edges.append((prev, f"lif{i}"))
        prev = f"lif{i}"
    nodes["output"] = nir.Output(output_type=np.array([net.n_classes]))
    edges.append((prev, "output"))
    meta = {"nonvon": "SpikingClassifier", "timesteps": c.timesteps, "coding": c.coding,
            "surrogate": c.surrogate, "dt": dt, "input_shape": list(net.input_shape)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _in_shape(net: SpikingClassifier, i: int) -> torch.Size:
    x = torch.zeros(1, *net.input_shape)
    with torch.no_grad():
        for j, layer in enumerate(net.layers):
            xi = net._shape_in(j, x)
            if j == i:
                return xi.shape[1:]
            x = layer(xi)
    raise IndexError(i)


def _out_shape(net: SpikingClassifier, i: int) -> torch.Size:
    with torch.no_grad():
        return net.layers[i](net._shape_in(i, torch.zeros(1, *_in_shape(net, i)))).shape[1:]


def _pair(v) -> tuple[int, int]:
    if isinstance(v, str):
        raise ConfigError(f"NIR Conv2d padding {v!r} is not supported", "export explicit padding")
    return tuple(int(u) for u in np.broadcast_to(np.atleast_1d(v), (2,)))


def _uniform(a, name: str) -> float:
    a = np.asarray(a, dtype=np.float64)
    if not np.allclose(a, a.flat[0]):
        raise ConfigError(f"NIR graph has per-neuron {name}; nonvon's layers share one value",
                          "use one value per population")
    return float(a.flat[0])


def from_nir(graph) -> SpikingClassifier:
    """Rebuild a :class:`SpikingClassifier` from a graph written by :func:`to_nir`."""
    import nir

    nxt = dict(graph.edges)
    meta = dict(graph.metadata or {})
    dt = float(meta.get("dt", DT))
    layers: list[nn.Module] = []
    beta = threshold = None
    reset = "subtract"
    node_name = nxt.get("input")
    while node_name is not None and node_name != "output":
        node = graph.nodes[node_name]
        if isinstance(node, nir.Affine):
            w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
            lin = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(w)
                lin.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
            layers.append(lin)
        elif isinstance(node, nir.Conv2d):
            w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
            conv = nn.Conv2d(w.shape[1] * node.groups, w.shape[0], tuple(w.shape[2:]),
                             stride=_pair(node.stride), padding=_pair(node.padding),
                             dilation=_pair(node.dilation), groups=node.groups)
            with torch.no_grad():
                conv.weight.copy_(w)
                conv.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
            layers.append(conv)
        elif isinstance(node, (nir.LIF, nir.IF)):
            nm = dict(node.metadata or {})
            threshold = _uniform(node.v_threshold, "thresholds")
            if "beta" in nm:
                beta = float(nm["beta"])
            elif isinstance(node, nir.IF):
                beta = 1.0
            else:
                beta = 1.0 - dt / _uniform(node.tau, "time constants")
            reset = nm.get("reset", "subtract")
        elif not isinstance(node, (nir.Flatten, nir.I)):
            raise ConfigError(f"NIR node {node_name!r} of type {type(node).__name__} is not supported",
                              "nonvon imports Affine, Conv2d, Flatten, LIF, IF and I nodes")
        node_name = nxt.get(node_name)
    if not layers or beta is None:
        raise ConfigError("the NIR graph has no synaptic layer followed by LIF/IF neurons",
                          "export with nonvon.simulators.spiking.nir_io.to_nir")
    lif = LIFConfig(timesteps=int(meta.get("timesteps", 25)), beta=beta, threshold=threshold,
                    reset=reset, surrogate=str(meta.get("surrogate", "atan")),
                    coding=str(meta.get("coding", "rate")))
    shape = tuple(int(v) for v in meta.get("input_shape",
                                           np.asarray(graph.nodes["input"].input_type["input"])))
    return SpikingClassifier(layers, shape, lif)
