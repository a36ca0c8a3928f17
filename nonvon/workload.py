"""NeuroBench-compatible metrics of a network, computed by nonvon from what ran.

NeuroBench (Yik et al., "The neurobench framework for benchmarking neuromorphic computing
algorithms and systems", Nature Communications 16:1545, 2025; package ``neurobench`` 2.3.0)
defines the figures below; every simulator whose network has the notion reports them in
``Result.metrics`` under these names, and ``tests/test_neurobench_agreement.py`` checks them
against the ``neurobench`` package on the same networks and inputs.

- ``footprint_bytes``: the bytes of the network's parameters and buffers at the precision
  they are stored in (NeuroBench's ``Footprint``: ``numel x element_size`` of every
  parameter and buffer of the module; NeuroBench's metric on nonvon's own module gives the
  same number).
- ``connection_sparsity``: zero weights over all weights of the synaptic layers (``Linear``,
  ``Conv1d/2d/3d``; biases and other layers left out).
- ``activation_sparsity``: zero outputs over all outputs of the activation layers (spiking
  neurons; ``ReLU`` and ``Sigmoid`` in a non-spiking network), over every call, timestep
  and sample.
- ``effective_macs`` / ``effective_acs``: per inference, the synaptic operations that had
  work to do, a non-zero input meeting a non-zero weight (bias not counted). Only kernel
  taps that fall on a real input count: a padded convolution's taps on the padding are not
  operations. They are ACs (accumulates) where the layer's input is spikes and MACs where
  it is analog, as the device computes them.
- ``dense_ops``: the same operations counted densely, every weight with every real input.

Where nonvon's choice differs from NeuroBench 2.3.0's, the choice is a field of
:class:`Conventions`; :data:`NEUROBENCH_CONVENTIONS` gives the package's figures exactly,
:data:`NONVON_CONVENTIONS` (the default everywhere) nonvon's. The functions and counters
here and ``Counts.neurobench`` in :mod:`nonvon.simulators.spiking.counting` take one.

Where a paradigm has no counterpart of a figure (no discrete synapses, no activation
layer), its simulator leaves the figure out and says why in its module docstring; a
missing figure is never reported as zero.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import _disable_current_modes

from nonvon.errors import ConfigError

__all__ = ["SYNAPTIC_LAYERS", "ACTIVATION_LAYERS", "Workload", "WorkloadCounter", "footprint_bytes",
           "connection_sparsity", "synaptic_ops", "is_synaptic", "dense_ops_per_sample",
           "spike_valued", "Conventions", "NONVON_CONVENTIONS", "NEUROBENCH_CONVENTIONS"]

#: Layers whose weights are synapses (NeuroBench's stateless connection layers).
SYNAPTIC_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Activation layers of a non-spiking network whose outputs count toward activation sparsity
#: (NeuroBench's ``SUPPORTED_ACTIVATIONS``).
ACTIVATION_LAYERS = (nn.ReLU, nn.Sigmoid)
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@dataclasses.dataclass(frozen=True)
class Conventions:
    """How the NeuroBench figures are counted where nonvon's choice differs from NeuroBench
    2.3.0's; the defaults are nonvon's, :data:`NEUROBENCH_CONVENTIONS` the package's.

    Args:
        readout_in_sparsity: count a spiking network's non-spiking readout as silent outputs
            in activation sparsity. NeuroBench counts every neuron layer of the model, so a
            readout written as an snnTorch neuron that never fires adds ``n_classes x T``
            zeros per inference; nonvon leaves the readout out (it is not a spiking layer).
        direct_every_step: count a direct-coded (analog) first layer's MACs and dense ops at
            each of the ``T`` timesteps. NeuroBench calls the layer at every step; nonvon
            counts it once per inference, as its constant current is computed once.
        acs_from_input_values: count a synaptic layer's operations as ACs when every value of
            the input tensor of that call (one batch) lies in {-1, 0, 1}, else as MACs.
            NeuroBench decides so from the values (``binary_inputs`` in its
            ``metrics/utils/layers/input.py``); nonvon from what the device does, so an
            analog input that holds only 0 and 1 is still MACs. The rule depends on which
            samples share a batch: nonvon's and NeuroBench's figures agree for the same
            batches.
        connection_sparsity_decimals: round the connection sparsity to this many decimals,
            the ratio computed in float32 first as NeuroBench does (so that a ratio near a
            rounding tie, such as 1/20000, rounds as NeuroBench rounds it); ``None``: the
            exact ratio, unrounded.
    """

    readout_in_sparsity: bool = False
    direct_every_step: bool = False
    acs_from_input_values: bool = False
    connection_sparsity_decimals: int | None = None

    def __post_init__(self) -> None:
        d = self.connection_sparsity_decimals
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0):
            raise ConfigError(f"Conventions(connection_sparsity_decimals={d!r}) is not a number "
                              "of decimals", "give a whole number >= 0 (NeuroBench rounds to 4), "
                              "or None for the unrounded ratio")


#: nonvon's own conventions (the default).
NONVON_CONVENTIONS = Conventions()
#: The conventions under which nonvon's figures equal the ``neurobench`` package's (2.3.0).
NEUROBENCH_CONVENTIONS = Conventions(readout_in_sparsity=True, direct_every_step=True,
                                     acs_from_input_values=True, connection_sparsity_decimals=4)


def spike_valued(x: torch.Tensor) -> bool:
    """Whether every value of ``x`` lies in {-1, 0, 1} (NeuroBench's test for spikes)."""
    return bool(((x == 0) | (x.abs() == 1)).all())


def _weight(layer: nn.Module) -> torch.Tensor:
    """A synaptic layer's weights: ``weight``, or what a layer storing them otherwise (an
    integer layer) returns from ``synaptic_weight()``."""
    get = getattr(layer, "synaptic_weight", None)
    return get() if callable(get) else layer.weight


def is_synaptic(layer: nn.Module) -> bool:
    """A ``Linear`` / ``ConvNd``, or a layer declaring ``synaptic_weight()`` (its weights; a
    2-D weight is fully connected, a 3-5-D one a convolution with the layer's ``stride``,
    ``padding``, ``dilation`` and ``groups``)."""
    return isinstance(layer, SYNAPTIC_LAYERS) or callable(getattr(layer, "synaptic_weight", None))


def synaptic_ops(layer: nn.Module, x: torch.Tensor, *, dense: bool = False) -> int:
    """Synaptic operations of one call of ``layer`` on input ``x`` (a batch).

    Each output sums, over the inputs it reads, ``[input != 0] * [weight != 0]`` (``dense``:
    every weight with every input); the sum runs through the layer's own linear map on
    0/1 tensors, so a convolution's padding (zeros) and stride are those of the layer.
    """
    w = _weight(layer).detach()
    wm = torch.ones_like(w, dtype=torch.float64) if dense else (w != 0).double()
    xm = torch.ones_like(x, dtype=torch.float64) if dense else (x != 0).double()
    if w.dim() == 2:
        return int(F.linear(xm.reshape(-1, w.shape[1]), wm).sum())
    conv = _CONV[w.dim() - 2]
    return int(conv(xm, wm, None, layer.stride, layer.padding, layer.dilation, layer.groups).sum())


def footprint_bytes(module: nn.Module) -> int:
    """Bytes of every parameter and buffer of ``module``, each at its stored element size."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def connection_sparsity(layers, conventions: Conventions = NONVON_CONVENTIONS) -> float:
    """Zero weights over all weights of the synaptic layers among ``layers`` (a module, whose
    sub-modules are searched, or an iterable of layers or weight tensors); 0.0 when there
    are none. Rounded as ``conventions.connection_sparsity_decimals`` says."""
    items = layers.modules() if isinstance(layers, nn.Module) else layers
    weights = [m.detach() if isinstance(m, torch.Tensor) else _weight(m).detach()
               for m in items if isinstance(m, torch.Tensor) or is_synaptic(m)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    if not total:
        return 0.0
    decimals = conventions.connection_sparsity_decimals
    if decimals is None:
        return zeros / total
    return round(float(torch.tensor(zeros, dtype=torch.float32) / total), decimals)


@dataclasses.dataclass
class Workload:
    """Totals over ``samples`` inferences; :meth:`metrics` gives them per inference."""

    effective_macs: int = 0
    effective_acs: int = 0
    dense_ops: int = 0
    zero_activations: int = 0
    activations: int = 0
    samples: int = 0

    def metrics(self) -> dict[str, float]:
        """``effective_macs``, ``effective_acs``, ``dense_ops`` per inference and
        ``activation_sparsity`` (left out where no activation layer ran)."""
        n = max(self.samples, 1)
        m = {"effective_macs": self.effective_macs / n, "effective_acs": self.effective_acs / n,
             "dense_ops": self.dense_ops / n}
        if self.activations:
            m["activation_sparsity"] = self.zero_activations / self.activations
        return m


class WorkloadCounter:
    """Counts a non-spiking network's workload from forward hooks, while active.

    Every synaptic layer call adds its effective MACs (its inputs are analog; with
    ``conventions.acs_from_input_values``, ACs where the call's input holds only -1, 0 and
    1) and dense ops; every activation layer call its zero outputs. Samples are counted by
    :meth:`count_samples`.

    Example:
        >>> with WorkloadCounter(net) as wc:
        ...     wc.count_samples(len(x))
        ...     net(x)
        >>> wc.workload.metrics()

    Args:
        module: the network.
        activations: the layer classes whose outputs are activations (default
            :data:`ACTIVATION_LAYERS`).
        conventions: how to count where nonvon and NeuroBench differ (:class:`Conventions`).
    """

    def __init__(self, module: nn.Module, activations: tuple[type, ...] = ACTIVATION_LAYERS,
                 conventions: Conventions = NONVON_CONVENTIONS):
        self.module, self.activations, self.conventions = module, activations, conventions
        self.workload = Workload()
        self._handles: list = []
        self._dense: dict[tuple, int] = {}  # (layer id, input shape) -> dense ops

    def _hook(self, layer: nn.Module, args: tuple, out: torch.Tensor) -> None:
        # the counter's own arithmetic is not the network's: hide it from any torch function
        # or dispatch mode watching the run (a FlopCounterMode, an op counter's function mode)
        with torch._C.DisableTorchFunction(), _disable_current_modes():
            self._count(layer, args, out)

    def _count(self, layer: nn.Module, args: tuple, out: torch.Tensor) -> None:
        w = self.workload
        if is_synaptic(layer):
            x = args[0]
            ops = synaptic_ops(layer, x)
            if self.conventions.acs_from_input_values and spike_valued(x):
                w.effective_acs += ops
            else:
                w.effective_macs += ops
            key = (id(layer), tuple(x.shape))
            if key not in self._dense:  # the dense count depends on the shape alone
                self._dense[key] = synaptic_ops(layer, x, dense=True)
            w.dense_ops += self._dense[key]
        elif isinstance(layer, self.activations):
            w.activations += out.numel()
            w.zero_activations += out.numel() - int(torch.count_nonzero(out))

    def count_samples(self, n: int) -> None:
        self.workload.samples += n

    def __enter__(self) -> WorkloadCounter:
        for m in self.module.modules():
            if is_synaptic(m) or isinstance(m, self.activations):
                self._handles.append(m.register_forward_hook(self._hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def dense_ops_per_sample(layer: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Dense operations of one sample through ``layer`` (input shape without the batch)."""
    return synaptic_ops(layer, torch.zeros(1, *in_shape), dense=True) if math.prod(in_shape) else 0
