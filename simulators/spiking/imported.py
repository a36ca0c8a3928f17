"""A NIR graph (file or object), neuron parameters included, on the spiking chips.

``nonvon.load_network(graph, device="loihi", timesteps=25, coding="rate")`` reads a
feed-forward NIR graph (Pedersen et al., Nature Communications 15:8122, 2024), e.g. one
written by ``snntorch.export_to_nir``, and returns the chip simulator named by ``device``
(any registered spiking simulator: ``loihi``, ``truenorth``, ``spinnaker2``,
``brainscales2``, ``snn-mlp``, ...) holding that network, not retrained. The chip's
constraints apply as to a network it trained itself: weights quantized to its precision
(no fine-tuning), decay rounded to its decay bits, neurons and synapses placed on its
cores, fan-in and axon limits checked; a network the chip cannot hold is refused with the
limit, before any evaluation.

The graph is read as nonvon's discrete LIF (:mod:`.lif_kernels`), the forward-Euler step
``dt`` of NIR's ``LIF`` (``tau dv/dt = (v_leak - v) + R I``)::

    beta = 1 - dt / tau,  input scale s = dt R / tau,  constant current dt v_leak / tau

per population (``IF``: ``beta = 1``, ``s = R dt``); ``s != 1`` scales the synaptic layer
before it, and ``v_leak`` is added to its bias as ``v_leak / R``. ``dt`` is the graph's
``metadata["dt"]`` or the ``dt`` option (default 1e-4 s, the step snnTorch's export writes
``tau`` and ``R`` with). Each population keeps its own ``beta`` and threshold; one value per
population is required (per-neuron values are refused, naming the node). NIR resets a
neuron that fired to ``v_reset`` (0 here; another value is refused): snnTorch's
``reset_mechanism="zero"``. snnTorch's export does not record its reset mechanism, so a
network trained with reset by subtraction (snnTorch's default) is imported with
``reset="subtract"``; graphs written by :func:`.nir_io.to_nir` carry theirs. The coding of
the input and ``T`` are not in NIR either: options ``coding`` and ``timesteps``.

The last synaptic layer may feed NIR's ``I`` (an integrator: nonvon's readout, the logit is
the final membrane over ``T``) or ``LIF``/``IF`` neurons (snnTorch's usual spiking output:
the logits are the output spike counts, ties to the lowest class, as
``spk_rec.sum(0).argmax(1)``); the output neurons' updates and spikes are counted like the
hidden ones'. Supported nodes: ``Input``, ``Output``, ``Affine``, ``Linear``, ``Conv2d``,
``Flatten``, ``LIF``, ``IF``, ``I``; anything else (recurrent subgraphs, ``CubaLIF``,
pooling, ...) is refused, naming the node.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nonvon.errors import ConfigError, IncompatibleError
from nonvon.importers import Imported, Importer, check_options, resolve_preset
from nonvon.simulator import Capabilities
from nonvon.simulators.spiking.chips import ChipSimulator
from nonvon.simulators.spiking.counting import Counter, Counts
from nonvon.simulators.spiking.lif_kernels import lif_sequence
from nonvon.simulators.spiking.networks import LIFConfig, Recording, SpikingClassifier
from nonvon.simulators.spiking.nir_io import DT
from nonvon.simulators.spiking.simulator import SpikingSimulator
from nonvon.tasks import Task

__all__ = ["NIRNetwork", "Population", "read_nir", "import_nir", "IMPORTER"]

_SYNAPSES = ("Affine", "Linear", "Conv2d")
_NEURONS = ("LIF", "IF")


@dataclasses.dataclass(frozen=True)
class Population:
    """The neurons one synaptic layer drives, as read from their NIR node."""

    node: str
    beta: float
    threshold: float
    reset: str


@dataclasses.dataclass
class _Recording(Recording):
    out_spikes: torch.Tensor | None = None


class NIRNetwork(SpikingClassifier):
    """A :class:`SpikingClassifier` whose populations each keep their own ``beta``,
    threshold and reset, with an integrating or a spiking readout."""

    def __init__(self, layers, input_shape, lif: LIFConfig, populations: list[Population],
                 readout: str, names: list[str]):
        super().__init__(layers, input_shape, lif)
        self.populations = list(populations)
        self.readout = readout
        self.names = list(names)  # the NIR node of each synaptic layer

    def _lif(self, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = next(self._pops)  # the populations in order, one per call within a run
        return lif_sequence(cur.contiguous(), p.beta, p.threshold, reset=p.reset,
                            surrogate=self.lif.spike_fn)

    def run(self, x: torch.Tensor, record: bool = False):
        self._pops = iter(self.populations)
        if self.readout == "integrate":
            return super().run(x, record)
        # a spiking readout: the parent's run up to the last layer's currents, then LIF neurons
        _, rec = super().run(x, record=True)
        s, mem = self._lif(rec.currents[-1])
        rec.mems[-1] = mem
        rec = _Recording(rec.inputs, rec.currents, rec.mems, s.sum(0), out_spikes=s)
        return rec.logits, (rec if record else None)


class _SpikingReadoutCounter(Counter):
    """Counts a spiking readout as the LIF population it is: its updates are neuron updates
    with decay and threshold, its spikes are spikes."""

    def count(self, rec: Recording) -> Counts:
        c = super().count(rec)
        if getattr(self.net, "readout", "integrate") == "spikes":
            c.spiking_neuron_steps += c.readout_updates
            c.spikes += int(rec.out_spikes.sum())
            c.readout_updates = c.readout_active = 0
        return c


def _uniform(a, node: str, what: str) -> float:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0 or not np.allclose(a, a.flat[0]):
        raise IncompatibleError(f"NIR node {node!r} has per-neuron {what} (from {a.min():g} to "
                                f"{a.max():g}); nonvon's populations share one value",
                                f"give the population of node {node!r} one {what}")
    return float(a.flat[0])


def _pair(v, node: str) -> tuple[int, int]:
    if isinstance(v, str):
        raise IncompatibleError(f"NIR Conv2d node {node!r} has padding {v!r}",
                                "export explicit integer padding")
    return tuple(int(u) for u in np.broadcast_to(np.atleast_1d(v), (2,)))


def _synapse(node, name: str) -> nn.Module:
    w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
    bias = getattr(node, "bias", None)
    if type(node).__name__ == "Conv2d":
        if w.dim() != 4:
            raise IncompatibleError(f"NIR Conv2d node {name!r} has a weight of shape {tuple(w.shape)}",
                                    "export a 2-D convolution weight (out, in, kh, kw)")
        layer = nn.Conv2d(w.shape[1] * node.groups, w.shape[0], tuple(w.shape[2:]),
                          stride=_pair(node.stride, name), padding=_pair(node.padding, name),
                          dilation=_pair(node.dilation, name), groups=int(node.groups))
    else:
        layer = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(w)
        b = np.zeros(w.shape[0]) if bias is None else np.broadcast_to(np.asarray(bias), (w.shape[0],))
        layer.bias.copy_(torch.as_tensor(np.array(b), dtype=torch.float32))
    return layer


def _neurons(node, name: str, layer: nn.Module, dt: float, reset: str | None) -> Population:
    """The population, folding NIR's input scale and leak into ``layer``."""
    meta = dict(node.metadata or {})
    threshold = _uniform(node.v_threshold, name, "thresholds")
    r = _uniform(node.r, name, "resistances R")
    if type(node).__name__ == "IF":
        beta, scale, leak = 1.0, r * dt, 0.0
    else:
        tau = _uniform(node.tau, name, "time constants")
        if tau < dt:
            raise IncompatibleError(f"NIR node {name!r}: tau = {tau:g} s is shorter than the step "
                                    f"dt = {dt:g} s (forward Euler would not decay)",
                                    "pass the dt the graph was exported with (dt=...)")
        beta, scale = 1.0 - dt / tau, dt * r / tau
        leak = dt * _uniform(node.v_leak, name, "leak potentials") / tau
    if "beta" in meta:  # nonvon's own export keeps beta exactly
        beta = float(meta["beta"])
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and _uniform(v_reset, name, "reset potentials") != 0.0:
        raise IncompatibleError(f"NIR node {name!r} resets to v_reset = "
                                f"{_uniform(v_reset, name, 'reset potentials'):g}; nonvon's neurons "
                                "reset to 0 or by subtraction", "export with v_reset = 0")
    with torch.no_grad():
        if not math.isclose(scale, 1.0, rel_tol=1e-6):
            layer.weight.mul_(scale)
            layer.bias.mul_(scale)
        if leak:
            layer.bias.add_(leak)
    return Population(name, beta, threshold, reset or str(meta.get("reset", "zero")))


def read_nir(graph, *, timesteps: int, coding: str, dt: float | None = None,
             reset: str | None = None) -> NIRNetwork:
    """A :class:`NIRNetwork` from a feed-forward NIR graph (see the module docstring).

    Raises:
        IncompatibleError: a node nonvon cannot run (named), a branch, per-neuron values.
    """
    meta = dict(graph.metadata or {})
    dt = float(dt if dt is not None else meta.get("dt", DT))
    nxt: dict[str, str] = {}
    for a, b in graph.edges:
        if a in nxt:
            raise IncompatibleError(f"NIR node {a!r} feeds several nodes ({nxt[a]!r}, {b!r}); "
                                    "nonvon runs feed-forward chains", "export a sequential network")
        nxt[a] = b
    inputs = [n for n, node in graph.nodes.items() if type(node).__name__ == "Input"]
    if len(inputs) != 1:
        raise IncompatibleError(f"the NIR graph has {len(inputs)} Input nodes", "export one input")
    in_shape = tuple(int(v) for v in np.asarray(next(iter(graph.nodes[inputs[0]].input_type.values()))))
    layers, pops, names = [], [], []
    readout = None
    name = nxt.get(inputs[0])
    seen = set()
    while name is not None and type(graph.nodes[name]).__name__ != "Output":
        if name in seen:
            raise IncompatibleError(f"NIR node {name!r} is in a loop (a recurrent connection)",
                                    "nonvon imports feed-forward networks")
        seen.add(name)
        node = graph.nodes[name]
        kind = type(node).__name__
        if kind in _SYNAPSES:
            if len(pops) != len(layers) and readout is None:
                raise IncompatibleError(f"NIR node {name!r} ({kind}) follows another synaptic layer "
                                        "without neurons between them", "put LIF/IF neurons between them")
            layers.append(_synapse(node, name))
            names.append(name)
        elif kind in _NEURONS:
            if len(layers) != len(pops) + 1:
                raise IncompatibleError(f"NIR node {name!r} ({kind}) is not fed by a synaptic layer",
                                        "export Affine/Linear/Conv2d -> LIF/IF pairs")
            pops.append(_neurons(node, name, layers[-1], dt, reset))
        elif kind == "I":
            readout = "integrate"
            r = _uniform(node.r, name, "resistances R")
            with torch.no_grad():
                layers[-1].weight.mul_(r * dt)
                layers[-1].bias.mul_(r * dt)
        elif kind != "Flatten":
            raise IncompatibleError(
                f"NIR node {name!r} is a {kind}, which nonvon's spiking chips do not run",
                "export Affine/Linear/Conv2d synapses with LIF/IF neurons (snnTorch: Linear/Conv2d "
                "with Leaky), Flatten, and an I or LIF/IF output")
        name = nxt.get(name)
    if not layers or not pops and readout is None:
        raise IncompatibleError("the NIR graph has no synaptic layer followed by neurons",
                                "export Affine/Linear/Conv2d -> LIF/IF layers")
    if readout is None:
        if len(pops) != len(layers):
            raise IncompatibleError("the NIR graph's last synaptic layer feeds no neurons",
                                    "end with an I (integrator) or LIF/IF output population")
        readout = "spikes"
    first = pops[0] if pops else Population("", 1.0, 1.0, "zero")
    lif = LIFConfig(timesteps=timesteps, beta=first.beta, threshold=first.threshold,
                    reset=first.reset, coding=coding)
    return NIRNetwork(layers, in_shape, lif, pops, readout, names)


class _ImportedSpiking(Imported):
    """The NIR network in place of the chip's trained one; no training, no fine-tuning."""

    def _set_network(self, net: NIRNetwork) -> None:
        self._imported = net

    @property
    def capabilities(self) -> Capabilities:
        base = super().capabilities
        conv = isinstance(self._imported.layers[0], nn.Conv2d)
        return dataclasses.replace(base, input_kinds=("image",) if conv else ("image", "vector"))

    def _build(self, task: Task) -> NIRNetwork:
        net = copy.deepcopy(self._imported)
        n_in = math.prod(net.input_shape)
        if math.prod(task.input_shape) != n_in:
            raise IncompatibleError(f"the NIR graph takes {net.input_shape} inputs ({n_in} values); "
                                    f"task {task.name!r} has {task.input_shape}",
                                    "evaluate on the task (and transforms) the network was trained on")
        if net.n_classes != task.n_classes:
            raise IncompatibleError(f"the NIR graph has {net.n_classes} outputs; task {task.name!r} "
                                    f"has {task.n_classes} classes", "import a network for this task")
        conv = isinstance(net.layers[0], nn.Conv2d)
        net.input_shape = tuple(task.input_shape) if not conv or len(task.input_shape) == 2 \
            else net.input_shape
        return net

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        self.network = self._build(task)
        self._check_network(self.network)
        self._training_shared = False
        self.network.eval()
        self._after_training(task, seed=seed, progress=progress)
        self._counter = None

    def _predict(self, x):
        if self._counter is None:
            net = self.network.cpu()
            self._counter = _SpikingReadoutCounter(net, self._core_map()).to(self.device)
        return super()._predict(x)


class _ImportedChip(_ImportedSpiking):
    def _deploy(self, net: NIRNetwork) -> None:
        step = 2 ** self.chip.decay_bits if self.chip.decay_bits else None
        pops = []
        for p in net.populations:
            if self.chip.linear_leak_only and p.beta != 1.0:
                raise IncompatibleError(f"{self.chip.name}: NIR node {p.node!r} decays by "
                                        f"beta = {p.beta:g} per step; the chip's neurons leak "
                                        "linearly", "import integrate-and-fire (IF, or LIF with "
                                        "beta = 1) neurons, or pick another chip")
            beta = 1.0 - round((1.0 - p.beta) * step) / step if step else p.beta
            pops.append(dataclasses.replace(p, beta=beta))
        net.populations = pops
        super()._deploy(net)


def _spiking_simulators() -> dict[str, type]:
    """Registered simulators that run a surrogate-trained LIF network (chips included)."""
    from nonvon.registry import registry

    return {n: c for n, c in registry().simulators.items()
            if isinstance(c, type) and issubclass(c, SpikingSimulator)}


def import_nir(graph, *, device: str = "loihi", preset: Any = "default",
               timesteps: int | None = None, coding: str | None = None, dt: float | None = None,
               reset: str | None = None, **options):
    """A NIR graph (a ``nir.NIRGraph`` or the path of a ``.nir`` file) on the spiking
    simulator ``device`` (``loihi``, ``truenorth``, ``spinnaker2``, ``brainscales2``,
    ``snn-mlp``, ...). ``preset``: the price list (``"default"``: the chip's own, or
    ``cmos-7nm`` for an event-driven digital accelerator; ``None``: unpriced).
    ``timesteps``, ``coding``, ``dt``, ``reset``: see the module docstring (``None``: the
    graph's metadata where it has them, as :func:`.nir_io.to_nir` writes, else 25 steps of
    rate coding); other options go to the simulator's config (e.g. ``weight_bits``,
    ``chips``, ``eval_batch_size``)."""
    import nir

    if isinstance(graph, (str, Path)):
        try:
            graph = nir.read(str(graph))
        except (OSError, KeyError, ValueError) as e:
            raise ConfigError(f"cannot read NIR file {str(graph)!r}: {e}",
                              "give a file written by nir.write (e.g. of snntorch.export_to_nir)") from None
    meta = dict(graph.metadata or {})
    timesteps = int(meta.get("timesteps", 25)) if timesteps is None else timesteps
    coding = str(meta.get("coding", "rate")) if coding is None else coding
    sims = _spiking_simulators()
    if device not in sims:
        raise ConfigError(f"device {device!r} is not a spiking simulator that takes an imported "
                          "network", f"use one of {', '.join(sorted(sims))}")
    base = sims[device]
    allowed = {f.name for f in dataclasses.fields(base.Config)} - {
        "model", "hidden", "channels", "dense", "kernel", "timesteps", "beta", "threshold",
        "reset", "coding", "epochs", "batch_size", "lr", "weight_decay", "qat_epochs"}
    check_options(f"the NIR importer (device {device!r})", options, allowed)
    net = read_nir(graph, timesteps=timesteps, coding=coding, dt=dt, reset=reset)
    mixin = _ImportedChip if issubclass(base, ChipSimulator) else _ImportedSpiking
    cls = type(f"NIR{base.__name__}", (mixin, base), {"fixed": (), "defaults": {}})
    conv = isinstance(net.layers[0], nn.Conv2d)
    widths = tuple(layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
                   for layer in net.layers[:-1]) or (1,)
    cfg = {"model": "cnn" if conv else "mlp", "timesteps": timesteps, "coding": coding,
           "beta": net.lif.beta, "threshold": net.lif.threshold, "reset": net.lif.reset,
           "epochs": 1, **({"hidden": widths} if not conv else {})}
    if issubclass(base, ChipSimulator):
        cfg["qat_epochs"] = 0  # deployed as given: quantized, not fine-tuned
        if base.chip.linear_leak_only:
            for p in net.populations:
                if p.beta != 1.0:
                    raise IncompatibleError(
                        f"{base.chip.name}: NIR node {p.node!r} decays by beta = {p.beta:g} per "
                        "step; the chip's neurons leak linearly",
                        "import integrate-and-fire (IF, or LIF with beta = 1) neurons, or pick "
                        "another chip")
            cfg["beta"] = 1.0
    sim = cls.__new__(cls)
    sim._set_network(net)
    base_defaults = dict(base.defaults)
    base_defaults.update(cfg)
    base_defaults.update(options)
    cls.__init__(sim, base.Config(**base_defaults))
    sim.name = f"nir:{device}"
    native = getattr(sim, "native_presets", ())
    fallback = native[0] if native else "cmos-7nm"
    sim.preset = resolve_preset(preset, fallback)
    return sim


def _accepts(obj) -> bool:
    if isinstance(obj, Path):
        return obj.suffix in (".nir", ".h5", ".hdf5")
    return type(obj).__module__.startswith("nir") and type(obj).__name__ == "NIRGraph"


IMPORTER = Importer("nir", _accepts, import_nir,
                    "a NIR graph (nir.NIRGraph or .nir file, e.g. from snntorch.export_to_nir) "
                    "onto a spiking chip (device='loihi', 'truenorth', 'spinnaker2', "
                    "'brainscales2', 'snn-mlp')", suffixes=(".nir",))
