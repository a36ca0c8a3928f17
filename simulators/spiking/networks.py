"""Surrogate-gradient spiking classifiers: fully connected and convolutional LIF networks.

A network is a stack of synaptic layers (``Linear`` / ``Conv2d``), each followed by a layer
of LIF neurons (snnTorch's ``Leaky``, :mod:`nonvon.simulators.spiking.lif_kernels`), except the last,
which feeds a non-spiking readout: ``n_classes`` integrators without threshold or leak whose
final membrane divided by ``T`` is the logit (a linear readout of the last hidden layer's
spike counts, readable from a chip's membrane probe). Training uses surrogate gradients
(Neftci, Mostafa & Zenke, IEEE Signal Processing Magazine 36(6), 2019) through time.

The whole input sequence runs layer by layer: a synaptic layer sees all ``T x batch``
inputs as one batch (it has no state), then the fused LIF sweeps time. Three LIF backends
compute the same dynamics: ``"fused"`` (:func:`lif_sequence`, ours), ``"steps"`` (our
:func:`lif_step` in a Python loop, autograd per step) and ``"snntorch"`` (``snntorch.Leaky``
in a loop; needs snnTorch). ``tests/test_spiking_lif.py`` checks that they agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from nonvon.errors import ConfigError
from nonvon.simulators.spiking.coding import CODINGS, check_timesteps, encode
from nonvon.simulators.spiking.lif_kernels import Surrogate, check_lif_params, lif_sequence, lif_step

__all__ = ["LIFConfig", "LIFOptions", "SpikingClassifier", "Recording", "spiking_mlp", "spiking_cnn",
           "BACKENDS"]

BACKENDS = ("fused", "steps", "snntorch")


@dataclasses.dataclass(frozen=True)
class LIFOptions:
    """The neuron and coding options, their names and defaults: a :class:`LIFConfig` holds
    them, and so does a spiking simulator's flat config (which builds its ``LIFConfig``)."""

    timesteps: int = 25
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "atan"
    surrogate_param: float | None = None
    coding: str = "rate"


@dataclasses.dataclass(frozen=True)
class LIFConfig(LIFOptions):
    """Neuron and coding settings shared by every LIF layer of a network.

    Args:
        timesteps: ``T``, steps per inference (> 0).
        beta: membrane decay per step, in [0, 1].
        threshold: firing threshold (> 0).
        reset: ``"subtract"`` or ``"zero"``.
        surrogate: ``"atan"``, ``"fast_sigmoid"`` or ``"sigmoid"``.
        surrogate_param: its alpha / slope (``None``: snnTorch's default).
        coding: ``"rate"``, ``"latency"`` or ``"direct"`` (see :mod:`.coding`).
    """

    def __post_init__(self) -> None:
        check_timesteps(self.timesteps)
        check_lif_params(self.beta, self.threshold, self.reset)
        if self.coding not in CODINGS:
            raise ConfigError(f"unknown coding {self.coding!r}", f"use one of {CODINGS}")
        Surrogate(self.surrogate, self.surrogate_param)  # validates

    @property
    def spike_fn(self) -> Surrogate:
        return Surrogate(self.surrogate, self.surrogate_param)


@dataclasses.dataclass
class Recording:
    """What one forward pass emitted, for counting (all tensors time first).

    ``inputs[i]`` is what synaptic layer ``i`` received at each step (``(T, B, *in_shape)``;
    spikes, or analog values for a direct-coded first layer), ``currents[i]`` its output
    currents and ``mems[i]`` the membranes of the neurons it drives (the readout's last).
    """

    inputs: list[torch.Tensor]
    currents: list[torch.Tensor]
    mems: list[torch.Tensor]
    logits: torch.Tensor


class SpikingClassifier(nn.Module):
    """Synaptic layers with LIF neurons between them and an integrating readout.

    Args:
        layers: the synaptic layers in order (``nn.Linear`` or ``nn.Conv2d``); a flatten
            happens automatically between the last conv and the first linear layer.
        input_shape: shape of one input sample, e.g. ``(28, 28)``.
        lif: neuron and coding settings.
        backend: ``"fused"``, ``"steps"`` or ``"snntorch"``.
    """

    def __init__(self, layers: Sequence[nn.Module], input_shape: Sequence[int], lif: LIFConfig,
                 backend: str = "fused"):
        super().__init__()
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}", f"use one of {BACKENDS}")
        for layer in layers:
            if not isinstance(layer, (nn.Linear, nn.Conv2d)):
                raise ConfigError(f"unsupported synaptic layer {type(layer).__name__}",
                                  "use nn.Linear or nn.Conv2d")
        self.layers = nn.ModuleList(layers)
        self.input_shape = tuple(input_shape)
        self.lif = lif
        self.backend = backend
        self.generator: torch.Generator | None = None  # rate-coding draws (None: global RNG)

    @property
    def n_classes(self) -> int:
        return self.layers[-1].out_features

    def _shape_in(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Reshape ``(N, ...)`` for layer ``i``: images get a channel axis, linear layers flatten."""
        layer = self.layers[i]
        if isinstance(layer, nn.Conv2d):
            return x.unsqueeze(1) if x.dim() == 3 else x
        return x.flatten(1)

    def _lif(self, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.lif
        if self.backend == "fused":
            return lif_sequence(cur, c.beta, c.threshold, reset=c.reset, surrogate=c.spike_fn)
        spikes, mems = [], []
        if self.backend == "steps":
            mem = torch.zeros_like(cur[0])
            for t in range(cur.shape[0]):
                s, mem = lif_step(cur[t], mem, c.beta, c.threshold, c.reset, c.spike_fn)
                spikes.append(s)
                mems.append(mem)
        else:
            neuron = self._snntorch_neuron()
            mem = neuron.init_leaky()
            for t in range(cur.shape[0]):
                s, mem = neuron(cur[t], mem)
                spikes.append(s)
                mems.append(mem)
        return torch.stack(spikes), torch.stack(mems)

    def _snntorch_neuron(self):
        # built once: snnTorch keeps every neuron ever built in a class-level list
        if not hasattr(self, "_snn_leaky"):
            import snntorch

            c = self.lif
            object.__setattr__(self, "_snn_leaky", snntorch.Leaky(
                beta=c.beta, threshold=c.threshold, reset_mechanism=c.reset,
                spike_grad=c.spike_fn.snntorch()))
        return self._snn_leaky.to(self.layers[0].weight.device)

    def run(self, x: torch.Tensor, record: bool = False) -> tuple[torch.Tensor, Recording | None]:
        """Encode ``x`` (``(B, *input_shape)``, values in [0, 1]) and run all ``T`` steps.

        Returns:
            ``(logits, recording)``; ``recording`` is ``None`` unless ``record``.
        """
        if tuple(x.shape[1:]) != self.input_shape:
            raise ConfigError(f"input shape {tuple(x.shape[1:])} does not match the network's "
                              f"{self.input_shape}", "give inputs of the shape the network was built for")
        T, B = self.lif.timesteps, x.shape[0]
        direct = self.lif.coding == "direct"
        s = encode(x, T, self.lif.coding, generator=self.generator)
        rec = Recording([], [], [], None) if record else None
        for i, layer in enumerate(self.layers):
            if i == 0 and direct:
                # constant input: the first layer's currents are the same at every step
                once = layer(self._shape_in(0, x))
                cur = once.unsqueeze(0).expand(T, *once.shape)
            else:
                flat = self._shape_in(i, s.reshape(T * B, *s.shape[2:]))
                out = layer(flat)
                cur = out.reshape(T, B, *out.shape[1:])
            if rec is not None:
                rec.inputs.append(s)
                rec.currents.append(cur)
            if i == len(self.layers) - 1:
                # integrating readout: m[T-1] = sum_t I[t]; logits = m[T-1] / T
                logits = cur.mean(0)
                if rec is not None:
                    rec.mems.append(cur.cumsum(0))
                    rec.logits = logits
                return logits, rec
            s, mem = self._lif(cur)
            if rec is not None:
                rec.mems.append(mem)
        raise AssertionError("unreachable")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]


def _check_sizes(**sizes) -> None:
    for name, v in sizes.items():
        vals = v if isinstance(v, (tuple, list)) else (v,)
        if not vals or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in vals):
            raise ConfigError(f"{name}={v!r} must be positive integer(s)", f"e.g. {name}=128")


def spiking_mlp(n_inputs: int, hidden: Sequence[int], n_classes: int, lif: LIFConfig,
                input_shape: Sequence[int] | None = None, backend: str = "fused") -> SpikingClassifier:
    """``[Linear -> LIF] * len(hidden) -> Linear -> readout``.

    Args:
        n_inputs: flattened input size.
        hidden: widths of the spiking hidden layers.
        n_classes: readout neurons.
        lif: neuron and coding settings.
        input_shape: one sample's shape (default ``(n_inputs,)``).
        backend: LIF implementation.
    """
    _check_sizes(n_inputs=n_inputs, hidden=tuple(hidden) or (1,), n_classes=n_classes)
    widths = [n_inputs, *hidden, n_classes]
    layers = [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    return SpikingClassifier(layers, input_shape or (n_inputs,), lif, backend)


def spiking_cnn(image_side: int, channels: Sequence[int], dense: int, n_classes: int, lif: LIFConfig,
                kernel: int = 5, backend: str = "fused") -> SpikingClassifier:
    """``Conv(k, stride 1) -> LIF -> [Conv(k, stride 2) -> LIF] * (len(channels) - 1) ->
    Linear(dense) -> LIF -> Linear -> readout``.

    Downsampling is done by strided convolutions rather than max-pooling, so every stage
    is synapses plus LIF neurons, as on a neuromorphic core.
    """
    _check_sizes(image_side=image_side, channels=tuple(channels), dense=dense, n_classes=n_classes)
    if kernel % 2 == 0:
        raise ConfigError(f"kernel={kernel} must be odd", "e.g. kernel=5")
    layers: list[nn.Module] = []
    c_in, side = 1, image_side
    for i, c in enumerate(channels):
        stride = 1 if i == 0 else 2
        layers.append(nn.Conv2d(c_in, c, kernel, stride=stride, padding=kernel // 2))
        side = (side + 2 * (kernel // 2) - kernel) // stride + 1
        if side < 1:
            raise ConfigError(f"{len(channels)} conv stages shrink a {image_side}-pixel image to nothing",
                              "use fewer conv channels stages")
        c_in = c
    layers += [nn.Linear(c_in * side * side, dense), nn.Linear(dense, n_classes)]
    return SpikingClassifier(layers, (image_side, image_side), lif, backend)
