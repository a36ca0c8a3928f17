"""The classical side of the quantum paradigm, as PyTorch layers counted like ``gpu-mlp``.

The VQC's host work (pre-processing the inputs into circuit angles, the readout map and the
decision) and the whole of its classical twin run as PyTorch layers and are counted by the
GPU baseline's :class:`~nonvon.simulators.gpu.counting.OpCounter`, so their arithmetic,
memory traffic (``sram_byte`` and resident bytes), kernel launches and host transfers follow
exactly the rules ``gpu-mlp`` is counted by. That makes ``vqc-classical-twin`` and
``gpu-mlp`` directly comparable (``tests/test_quantum_accounting.py`` checks that the same
layers give the same ledger) and charges the VQC's classical work as a GPU network's would be.

``OpCounter`` counts Linear, Conv2d, ReLU and max-pooling layers; the pre-processing and the
twin also use a clamp to the angle range, tanh, area averaging, a per-feature affine map,
normalization and the amplitude-encoding tree. :class:`ClassicalCounter` counts those: their
arithmetic from :data:`_ARITHMETIC` below, and their memory traffic, resident weights and
launch by ``OpCounter``'s own rule for an elementwise layer (it runs ``OpCounter``'s hook on
a parameter-sharing ReLU stand-in and keeps everything but the ReLU's compares), so a change
to that rule applies here too.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from nonvon.energy_models import get_op_kind
from nonvon.errors import unknown
from nonvon.simulators.gpu.counting import OpCounter

__all__ = ["READOUT_MAPS", "readout_map", "ClassicalCounter", "FeatureAffine", "SharedScale",
           "L2Normalize", "AmplitudeAngles",
           "front_end", "twin_network", "readout_head", "count_decision", "decide",
           "without_transfer"]


def _f32(a) -> torch.Tensor:
    """A float32 tensor of its own (computed in float64 first, so folded maps round once)."""
    return torch.from_numpy(np.array(a, dtype=np.float64).astype(np.float32))


class FeatureAffine(nn.Module):
    """``x * scale + shift`` with one scale and shift per feature (the angle scaling)."""

    def __init__(self, scale: np.ndarray, shift: np.ndarray):
        super().__init__()
        self.scale = nn.Parameter(_f32(scale), requires_grad=False)
        self.shift = nn.Parameter(_f32(shift), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class SharedScale(nn.Module):
    """The VQC's ``"scale"`` readout map: ``s * <Z> + b`` (one shared scale, a bias each)."""

    def __init__(self, s: np.ndarray, b: np.ndarray):
        super().__init__()
        self.s = nn.Parameter(_f32(s).reshape(1), requires_grad=False)
        self.b = nn.Parameter(_f32(b), requires_grad=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.s * z + self.b


class L2Normalize(nn.Module):
    """Rows scaled to unit length (the twin of an amplitude-encoded VQC sees ``x / |x|``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.linalg.vector_norm(x, dim=1, keepdim=True)


class AmplitudeAngles(nn.Module):
    """The amplitude-encoding tree angles of :func:`nonvon.simulators.quantum.circuits.amplitude_angles`
    (computed by that function, in float64, then stored as fp32 circuit inputs)."""

    def __init__(self, n_qubits: int):
        super().__init__()
        self.n_qubits = n_qubits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from nonvon.simulators.quantum.circuits import amplitude_angles

        return torch.from_numpy(amplitude_angles(x.numpy(), self.n_qubits).astype(np.float32))


def _amplitude_ops(m: AmplitudeAngles, inp: torch.Tensor, out: torch.Tensor) -> dict[str, int]:
    n, f = inp.shape
    k = 2 ** m.n_qubits
    # squares for the norms, partial sums over the tree, and a sqrt and an atan2 per angle
    # counted as one op each (a lower bound)
    return {"mul": n * f + n * 2 * (k - 1), "add": n * 2 * k}


# Arithmetic per call of the layers OpCounter has no counter for: op -> count. Transcendental
# functions (tanh, sqrt) count as one multiply each, a lower bound on what they cost.
_ARITHMETIC = (
    (nn.Tanh, lambda m, i, o: {"mul": o.numel()}),
    (nn.Hardtanh, lambda m, i, o: {"cmp": 2 * o.numel()}),              # max, then min
    (nn.AdaptiveAvgPool2d, lambda m, i, o: {"add": i.numel(), "mul": o.numel()}),  # sum, / area
    (FeatureAffine, lambda m, i, o: {"mul": o.numel(), "add": o.numel()}),
    (SharedScale, lambda m, i, o: {"mul": o.numel(), "add": o.numel()}),
    (L2Normalize, lambda m, i, o: {"mac": i.numel(), "mul": i.numel() + len(i)}),  # squares; sqrt, /
    (AmplitudeAngles, _amplitude_ops),
)


class _StandIn(nn.ReLU):
    """An elementwise layer holding another layer's parameters, for OpCounter's traffic rule."""


class ClassicalCounter(OpCounter):
    """:class:`OpCounter` that also counts the pre-processing and twin layers (see the module
    docstring); every other layer is counted by ``OpCounter`` itself."""

    def __init__(self, model: nn.Module, dtype: str = "fp32"):
        super().__init__(model, dtype)
        self._stand_ins: dict[int, _StandIn] = {}

    def _hook(self, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        rule = next((fn for cls, fn in _ARITHMETIC if isinstance(module, cls)), None)
        if rule is None:
            return super()._hook(module, args, out)
        stand_in = self._stand_ins.get(id(module))
        if stand_in is None:
            stand_in = self._stand_ins[id(module)] = _StandIn()
            for name, p in module.named_parameters(recurse=False):
                stand_in.register_parameter(name, p)
        before = dict(self.totals)
        super()._hook(stand_in, args, out)
        for kind in list(self.totals):  # the stand-in's compute is not this layer's
            if get_op_kind(kind).cost_class == "compute":
                self.totals[kind] = before.get(kind, 0)
        for op, n in rule(module, args[0], out).items():
            self.totals[f"{op}_{self.dtype}"] += n


def without_transfer(counter: OpCounter, fn) -> None:
    """Run ``fn()`` but drop the host transfers it counts (data already on the host)."""
    before = counter.totals["host_transfer_byte"]
    fn()
    counter.totals["host_transfer_byte"] = before


def count_decision(counter: OpCounter, scores: torch.Tensor) -> None:
    """The prediction step as ``gpu-mlp`` counts it (``OpCounter.count_argmax``); a
    single-score (two-class) output is decided by its sign: one compare per row."""
    counter.count_argmax(scores)
    if scores.shape[1] == 1:
        counter.totals[f"cmp_{counter.dtype}"] += len(scores)


def decide(scores: torch.Tensor) -> torch.Tensor:
    return (scores[:, 0] > 0).long() if scores.shape[1] == 1 else scores.argmax(1)


# -- builders -----------------------------------------------------------------------------
def front_end(pre) -> list[nn.Module]:
    """Layers computing ``pre.transform`` (a fitted
    :class:`~nonvon.simulators.quantum.vqc_training.Preprocessor`) in fp32.

    PCA is one Linear layer whose bias holds the centring; with angle scaling the per-feature
    map to ``[0, pi]`` is folded into it too (an affine map after an affine map), then a
    clamp. Downsampling is area averaging (as ``adaptive_avg_pool2d``), then the per-feature
    map and the clamp; ``"none"`` is the per-feature map and the clamp alone.
    """
    angle = pre.scale == "angle"
    span = np.where(pre.hi > pre.lo, pre.hi - pre.lo, 1.0)
    gain, offset = np.pi / span, -np.pi * pre.lo / span
    layers: list[nn.Module] = []
    if pre.mode == "pca":
        w, b = pre.components, -(pre.components @ pre.mean)
        if angle:
            w, b = gain[:, None] * w, gain * b + offset
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(_f32(w))
            lin.bias.copy_(_f32(b))
        layers += [nn.Flatten(), lin]
    else:
        if pre.mode == "downsample":
            layers += [nn.Unflatten(1, (1, pre.input_shape[0])), nn.AdaptiveAvgPool2d(pre.side)]
        layers.append(nn.Flatten())
        if angle:
            layers.append(FeatureAffine(gain, offset))
    if angle:
        layers.append(nn.Hardtanh(0.0, math.pi))
    return layers


def twin_network(pre, params: dict, *, normalize: bool) -> nn.Sequential:
    """The twin as one network: the pre-processing, then ``Linear -> tanh -> Linear`` (or one
    Linear when it has no hidden layer), weights from ``params`` (``w1, b1, w2, b2``)."""
    layers = front_end(pre)
    if normalize:
        layers.append(L2Normalize())
    keys = (("w1", "b1"), ("w2", "b2")) if "w1" in params else (("w2", "b2"),)
    for i, (wk, bk) in enumerate(keys):
        w = np.asarray(params[wk])
        lin = nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(_f32(w.T))
            lin.bias.copy_(_f32(params[bk]))
        layers.append(lin)
        if i < len(keys) - 1:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers).eval()


class NoReadoutMap:
    """``<Z>`` itself are the logits (one qubit, two classes)."""

    @staticmethod
    def logits(p: dict, z):
        return z

    @staticmethod
    def head(params: dict) -> nn.Sequential:
        return nn.Sequential(nn.Identity())


class LinearReadoutMap:
    """``<Z> @ s + b``: every read qubit through a trainable affine map."""

    @staticmethod
    def logits(p: dict, z):
        return z @ p["s"] + p["b"]

    @staticmethod
    def head(params: dict) -> nn.Sequential:
        s = np.asarray(params["s"])
        lin = nn.Linear(*s.shape)
        with torch.no_grad():
            lin.weight.copy_(_f32(s.T))
            lin.bias.copy_(_f32(params["b"]))
        return nn.Sequential(lin).eval()


class ScaleReadoutMap:
    """``s <Z> + b``: one shared scale, a bias per class."""

    @staticmethod
    def logits(p: dict, z):
        return p["s"] * z + p["b"]

    @staticmethod
    def head(params: dict) -> nn.Sequential:
        return nn.Sequential(SharedScale(params["s"], params["b"])).eval()


# The class of each readout-map name of :class:`nonvon.simulators.quantum.circuits.VQCModel`: the
# logits in JAX (training, the exact statevector) and the same map as a host network.
READOUT_MAPS = {"none": NoReadoutMap, "linear": LinearReadoutMap, "scale": ScaleReadoutMap}


def readout_map(kind: str):
    """The readout map named ``kind`` (see :data:`READOUT_MAPS`)."""
    if kind not in READOUT_MAPS:
        raise unknown("readout map", kind, tuple(READOUT_MAPS))
    return READOUT_MAPS[kind]


def readout_head(kind: str, params: dict) -> nn.Sequential:
    """The VQC's readout map on the host (see :class:`nonvon.simulators.quantum.circuits.VQCModel`)."""
    return readout_map(kind).head(params)
