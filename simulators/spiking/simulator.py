"""Surrogate-gradient spiking networks, counted spike by spike.

``snn-mlp`` and ``snn-cnn`` train a LIF network (:mod:`nonvon.simulators.spiking`) with surrogate
gradients and run it as an event-driven digital accelerator would: work happens only where
a spike arrives or a membrane is non-zero. The ledger is written in the shared arithmetic
and memory kinds, so the CMOS presets price it:

==========================  ===========================================================
event                        counted as
==========================  ===========================================================
synaptic event               ``add_fp32`` (accumulate) + 4 ``sram_byte`` (fp32 weight read)
effective MAC (direct input) ``mac_fp32`` + 4 ``sram_byte``
active LIF neuron-step       ``mul_fp32`` (decay) + ``add_fp32`` (integrate) + ``cmp_fp32``
                             (threshold) + 8 ``sram_byte`` (membrane read and write)
active readout neuron-step   ``add_fp32`` + 8 ``sram_byte``
spike                        ``add_fp32`` (reset by subtraction or to zero)
bias                         ``add_fp32`` per neuron-step
prediction                   ``n_classes - 1`` ``cmp_fp32`` (argmax)
input spike (rate, latency)  ``input_spike`` (one per spike injected into the accelerator)
direct (analog) input        4 ``host_transfer_byte`` per input value (fp32), per inference
class scores out             4 ``host_transfer_byte`` per class (fp32), per inference
==========================  ===========================================================

Idle neurons (zero state, no input) are skipped. The ledger's ``resident_bytes`` is what the
``sram_byte`` accesses read and write: every weight and bias (fp32) and every membrane of
the non-input populations (fp32), so pricing places the network in the memory that can
hold it (a 2.7 MB weight set does not pretend to live in a 32 KB array). The chip
simulators (:mod:`.chips`) reuse the training and the counts, and write them as chip
operations instead.

Every prediction's metrics also carry (per inference):

- ``spike_rate``: mean spikes per neuron per timestep over the spiking hidden (LIF) layers,
  i.e. hidden spikes / (hidden neurons x ``T``); the readout does not spike and the input
  is set by the coding. ``input_spike_rate`` is the same for a spike-coded input.
- ``spike_driven.<kind>``: the part of ledger kind ``<kind>`` proportional to the spikes
  (synaptic events and their accumulations, spike-driven weight reads, spike routing, resets,
  injected input spikes), per inference; ``spike_driven_input.<kind>`` is the share of it
  that input spikes cause. The rest of the ledger does not change with the spike rate.

- the NeuroBench figures (:mod:`nonvon.workload`, :mod:`.counting`): ``effective_acs``,
  ``effective_macs``, ``dense_ops``, ``activation_sparsity``, ``footprint_bytes`` and
  ``connection_sparsity``; ``neurobench.<name>`` is what NeuroBench 2.3.0 reports for the
  same run where its conventions give another value (``counting.NEUROBENCH_CONVENTIONS``).

After :meth:`~nonvon.Simulator.evaluate`, ``sim.neurobench`` holds that run's NeuroBench
figures under nonvon's conventions, and ``sim.counts.neurobench(conventions)`` recounts them
under others.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter as _Counter
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from nonvon.config import (
    choice,
    device,
    ints,
    non_negative,
    optional,
    positive,
    positive_int,
    set_tuple,
)
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, DataError
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.simulators.spiking.coding import check_unit_interval
from nonvon.simulators.spiking.counting import NEUROBENCH_CONVENTIONS, Counter, Counts, NeuroBench
from nonvon.simulators.spiking.networks import (
    LIFConfig,
    LIFOptions,
    SpikingClassifier,
    spiking_cnn,
    spiking_mlp,
)
from nonvon.simulators.torch_backed import TorchBacked
from nonvon.tasks import Task
from nonvon.training_memo import training_recipe
from nonvon.workload import connection_sparsity, footprint_bytes

__all__ = ["SNNConfig", "SpikingSimulator", "SnnMLP", "SnnCNN", "spike_metrics"]

FP32_BYTES = 4
MODELS = ("mlp", "cnn")


def spike_metrics(spikes: float, neuron_steps: float, driven: dict[str, float],
                  driven_input: dict[str, float], n: int, input_spikes: float = 0.0,
                  input_steps: float = 0.0) -> dict[str, float]:
    """``spike_rate`` and the spike-proportional ledger counts, per inference (see the
    module docstring); ``driven`` and ``driven_input`` are totals over ``n`` samples."""
    m = {"spike_rate": spikes / neuron_steps if neuron_steps else 0.0}
    if input_steps:
        m["input_spike_rate"] = input_spikes / input_steps
    m.update({f"spike_driven.{k}": v / n for k, v in driven.items() if v})
    m.update({f"spike_driven_input.{k}": v / n for k, v in driven_input.items() if v})
    return m


@dataclasses.dataclass(frozen=True)
class SNNConfig(LIFOptions):
    """Network, neuron, coding and training settings of a spiking simulator.

    Args:
        model: ``"mlp"`` or ``"cnn"``.
        hidden: MLP spiking hidden widths.
        channels, dense, kernel: CNN conv channels (first stride 1, then stride 2), the
            spiking dense width and the conv kernel size.
        timesteps: ``T`` per inference (> 0).
        beta, threshold, reset: LIF decay per step, firing threshold, ``"subtract"``/``"zero"``.
        surrogate, surrogate_param: snnTorch surrogate name and its alpha/slope.
        coding: ``"rate"``, ``"latency"`` or ``"direct"``.
        epochs, batch_size, lr, weight_decay: Adam with cosine decay, cross-entropy on the
            readout.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        eval_batch_size: samples per counted evaluation batch.
    """

    model: str = "mlp"
    hidden: tuple[int, ...] = (512, 512)
    channels: tuple[int, ...] = (32, 64, 64)
    dense: int = 256
    kernel: int = 5
    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    device: str = "auto"
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        choice("model", self.model, MODELS)
        device(self.device)
        set_tuple(self, "hidden", ints("hidden", self.hidden, example="(128,)", nonempty=True))
        set_tuple(self, "channels", ints("channels", self.channels, example="(32, 64)", nonempty=True))
        for name, example in (("dense", 256), ("kernel", 5), ("epochs", 15), ("batch_size", 128),
                              ("eval_batch_size", 256)):
            positive_int(name, getattr(self, name), example=example)
        positive("lr", self.lr, example=1e-3)
        non_negative("weight_decay", self.weight_decay, example=0.0)
        optional(positive, "surrogate_param", self.surrogate_param, example=2.0)
        _ = self.lif  # validates timesteps, beta, threshold, reset, surrogate, coding

    @property
    def lif(self) -> LIFConfig:
        """The neuron and coding options as a validated :class:`LIFConfig`."""
        return LIFConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(LIFOptions)})


class SpikingSimulator(TorchBacked, Simulator):
    """A surrogate-gradient LIF network on an event-driven digital accelerator (fp32)."""

    paradigm = "spiking"
    Config = SNNConfig

    def __init__(self, config: SNNConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.network: SpikingClassifier | None = None
        self.neurobench: NeuroBench | None = None
        self.counts: Counts | None = None  # the last evaluation's totals
        self._counter: Counter | None = None
        self._training_shared = False  # the trained weights came from another cell's training

    @property
    def op_kinds(self) -> frozenset[str]:
        kinds = {"add_fp32", "mul_fp32", "cmp_fp32", "sram_byte", "host_transfer_byte"}
        kinds.add("mac_fp32" if self.config.coding == "direct" else "input_spike")
        return frozenset(kinds)

    @property
    def precision(self) -> str:
        return "fp32"  # weights, membranes and arithmetic of the digital accelerator

    @property
    def capabilities(self) -> Capabilities:
        kinds = ("image",) if self.config.model == "cnn" else ("image", "vector")
        return Capabilities(input_kinds=kinds)

    def check_task(self, task: Task) -> None:
        super().check_task(task)
        if self.config.model == "cnn" and (len(task.input_shape) != 2
                                           or task.input_shape[0] != task.input_shape[1]):
            raise ConfigError(f"the spiking CNN takes square images; task {task.name!r} has "
                              f"{task.input_shape}", "use model='mlp' or resize the images")
        lo, hi = float(task.x_train.min()), float(task.x_train.max())
        if lo < 0 or hi > 1:
            raise ConfigError(f"spike coding needs inputs in [0, 1]; task {task.name!r} has values "
                              f"in [{lo:g}, {hi:g}]", "rescale the task's features to [0, 1]")

    def _build(self, task: Task) -> SpikingClassifier:
        c = self.config
        if c.model == "mlp":
            return spiking_mlp(task.n_features, c.hidden, task.n_classes, c.lif, task.input_shape)
        return spiking_cnn(task.input_shape[0], c.channels, c.dense, task.n_classes, c.lif, c.kernel)

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        torch.manual_seed(seed)
        self.network = self._build(task)
        self._check_network(self.network)
        # snn-mlp and the chips train the same network alike before a chip deploys it: in a
        # comparison the first cell trains it and the others load it (nonvon.training_memo)
        self._training_shared = self._train_shared(task, seed=seed, progress=progress)
        self.network.to(self.device).eval()
        self._after_training(task, seed=seed, progress=progress)

    def _training_recipe(self, task: Task, seed: int) -> dict:
        """What determines the trained (pre-deployment) weights: the :class:`SNNConfig`
        settings, none of a chip's, and where training ran."""
        settings = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(SNNConfig)
                    if f.name not in ("device", "eval_batch_size")}
        return training_recipe("surrogate-gradient LIF network", task, settings, seed, self.device)

    def _check_network(self, net: SpikingClassifier) -> None:
        """Structural limits, before any training (chips override)."""

    def _after_training(self, task: Task, *, seed: int, progress: bool) -> None:
        """Deployment step after training (chips quantize and check their limits)."""
        self._counter = None

    def load_weights(self, path: str | Path, task: Task, *, seed: int = 0) -> SpikingSimulator:
        """Load trained weights (``.safetensors``, e.g. from ``studies/spiking_targets.py``)
        instead of training, then deploy them as :meth:`fit` would."""
        from safetensors.torch import load_file

        self.check_task(task)
        self.network = self._build(task)
        self._check_network(self.network)
        try:
            state = load_file(str(path))
            self.network.load_state_dict(state)
        except (OSError, RuntimeError) as e:
            raise DataError(f"cannot load weights from {path}: {e}",
                            "give weights saved for this network configuration and task") from None
        self._after_training(task, seed=seed, progress=False)
        self._fitted_on = (task.input_shape, task.n_classes)
        self._seed = seed
        return self

    def _core_map(self):
        return None

    def _predict(self, x: np.ndarray) -> Prediction:
        net = self.network.to(self.device).eval()
        if self._counter is None:
            self._counter = Counter(net.cpu(), self._core_map()).to(self.device)
            net.to(self.device)
        xt = torch.from_numpy(np.ascontiguousarray(x))
        check_unit_interval(xt)
        # a fixed generator: the same samples get the same input spikes on every evaluation
        net.generator = torch.Generator(device=self.device).manual_seed(self._seed)
        counts, labels = Counts(), []
        try:
            with torch.no_grad():
                for i in range(0, len(xt), self.config.eval_batch_size):
                    logits, rec = net.run(xt[i:i + self.config.eval_batch_size].to(self.device),
                                          record=True)
                    counts += self._counter.count(rec)
                    labels.append(logits.argmax(1).cpu())
        finally:
            net.generator = None
        self.neurobench = counts.neurobench()
        self.counts = counts
        ledger = OpLedger(self._ledger(counts), n_inferences=len(xt),
                          resident_bytes=self.resident_bytes())
        metrics = {**self.neurobench.to_dict(), **self.static_metrics()}
        # the figures NeuroBench 2.3.0 gives the same run, where its conventions differ
        as_nb = counts.neurobench(NEUROBENCH_CONVENTIONS).to_dict()
        metrics.update({f"neurobench.{k}": v for k, v in as_nb.items() if v != metrics[k]})
        driven, driven_input = self._spike_driven(counts)
        metrics.update(spike_metrics(counts.spikes, counts.spiking_neuron_steps, driven,
                                     driven_input, len(xt), counts.input_spikes,
                                     counts.input_neuron_steps))
        if self._training_shared:  # its fit time leaves the training out
            metrics["training_shared"] = 1.0
        return Prediction(torch.cat(labels).numpy(), ledger, metrics=metrics)

    def static_metrics(self) -> dict[str, float]:
        """``footprint_bytes`` (fp32 weights and biases) and ``connection_sparsity`` of the
        network that runs (:mod:`nonvon.workload`)."""
        return {"footprint_bytes": float(footprint_bytes(self.network)),
                "connection_sparsity": connection_sparsity(self.network.layers)}

    def _populations(self) -> list[int]:
        """Neurons per population, input first (built once per network)."""
        if self._counter is not None:
            return self._counter.sizes
        from nonvon.simulators.spiking.counting import population_sizes

        return population_sizes(self.network.cpu())

    def resident_bytes(self) -> float:
        """Bytes the counted on-chip accesses hold: fp32 weights and biases, and one fp32
        membrane per non-input neuron."""
        params = sum(p.numel() for p in self.network.parameters())
        return float(FP32_BYTES * (params + sum(self._populations()[1:])))

    def _spike_driven(self, c: Counts) -> tuple[dict[str, float], dict[str, float]]:
        """Totals of the spike-proportional ledger counts, and the share due to input spikes."""
        driven = {"add_fp32": c.synops + c.spikes, "sram_byte": FP32_BYTES * c.synops,
                  "input_spike": c.input_spikes}
        driven_input = {"add_fp32": c.synops_input, "sram_byte": FP32_BYTES * c.synops_input,
                        "input_spike": c.input_spikes}
        return driven, driven_input

    def _io_bytes(self, c: Counts) -> int:
        """Host transfers: class scores out (fp32) and, for direct coding, the analog inputs in."""
        per = self.network.n_classes
        if self.network.lif.coding == "direct":
            per += math.prod(self.network.input_shape)
        return c.samples * FP32_BYTES * per

    # -- trained state ---------------------------------------------------------------
    def _load_state_tensors(self, tensors: dict, task: Task) -> None:
        super()._load_state_tensors(tensors, task)
        self._counter = None
        self._training_shared = False

    def _ledger(self, c: Counts) -> dict[str, float]:
        lif_active = c.neuron_updates_active - c.readout_active
        t: _Counter[str] = _Counter()
        t["add_fp32"] += (c.synops + c.spikes + c.biased_updates + lif_active + c.readout_active)
        t["sram_byte"] += 4 * (c.synops + c.effective_macs) + 8 * c.neuron_updates_active
        t["mac_fp32"] += c.effective_macs
        t["mul_fp32"] += lif_active
        t["cmp_fp32"] += lif_active + c.samples * (self.network.n_classes - 1)
        t["input_spike"] += c.input_spikes
        t["host_transfer_byte"] += self._io_bytes(c)
        return {k: v for k, v in t.items() if v}


class SnnMLP(SpikingSimulator):
    """Surrogate-gradient spiking MLP (784-512-512-10 LIF, rate coding, T = 25 on MNIST)."""

    fixed: ClassVar[tuple[str, ...]] = ("model",)
    defaults: ClassVar[dict] = {"model": "mlp"}
    cost_hint = 11.0
    quick: ClassVar[dict] = {"hidden": (64,), "epochs": 5, "timesteps": 8, "batch_size": 32, "lr": 5e-3}


class SnnCNN(SpikingSimulator):
    """Surrogate-gradient spiking CNN (conv32-conv64/2-conv64/2-256 LIF, direct coding, T = 6)."""

    fixed: ClassVar[tuple[str, ...]] = ("model",)
    defaults: ClassVar[dict] = {"model": "cnn", "timesteps": 6, "coding": "direct", "epochs": 20}
    cost_hint = 84.0
    quick: ClassVar[dict] = {"channels": (8,), "dense": 32, "kernel": 3, "epochs": 4, "timesteps": 4,
                             "batch_size": 32, "lr": 5e-3}
