"""Time-to-first-spike classifiers (Göltz et al. 2021), digital and on BrainScaleS-2.

Both simulators train a TTFS network with exact spike-time gradients
(:mod:`nonvon.simulators.spiking.ttfs_training`): every input pixel spikes once, brighter
earlier (``t = t_early + (1 - x) (t_late - t_early)``, in units of ``tau_s``), every neuron
spikes at most once, and the class is the output neuron that spikes first (a sample whose
output neurons all stay silent counts as wrong).

``snn-ttfs`` runs the network as an event-driven digital accelerator evaluating the closed
form (784-350-10 on MNIST by default). Its ledger comes from the spikes emitted, in the
shared arithmetic and memory kinds, priced by the CMOS presets:

==============================  ======================================================
event                           counted as
==============================  ======================================================
spike emitted (input or neuron)  ``mul_fp32`` (``e^2`` from ``e = exp(t / tau_m)``) + 4
                                ``sram_byte`` (``e`` read from a table of spike times)
synaptic event                  2 ``mac_fp32`` (``A += w e``, ``B += w e^2``) + 4
                                ``sram_byte`` (fp32 weight read)
neuron update                   ``mul_fp32`` + ``mac_fp32`` (``A^2 - 4 theta B``) +
                                ``cmp_fp32`` + 16 ``sram_byte`` (``A``, ``B`` read and
                                written): one per neuron and distinct input time, up to
                                the one that makes it fire (all, if it stays silent)
candidate crossing solved       16 ``mac_fp32`` (``sqrt`` and ``log`` at 8 MAC-equivalents
                                each: a modelling assumption for polynomial/Newton
                                evaluation) + 2 ``cmp_fp32`` (causality)
prediction                      ``n_classes - 1`` ``cmp_fp32`` (earliest output)
input spike                     ``input_spike`` (one per pixel spike injected)
class scores out                4 ``host_transfer_byte`` per output neuron (its fp32
                                spike time)
==============================  ======================================================

A synaptic event is one emitted spike reaching one non-zero synapse of its fan-out, so
synaptic events are ``sum over emitted spikes of non-zero fan-out``. The ledger's
``resident_bytes`` is what the ``sram_byte`` accesses hold: the fp32 weights (also when
``weight_bits`` quantizes their values: the digital accelerator stores and reads them as
fp32, so its ``precision`` is ``fp32``), ``A`` and ``B`` of every non-input neuron and the
spike-time table of every population (fp32 each).

Metrics (per inference): ``spike_rate`` is spikes per neuron per inference over the hidden
and output layers (each neuron spikes at most once; the inference is TTFS's one "step"),
``input_spike_rate`` the same for the input; ``spike_driven.<kind>`` the part of the ledger
proportional to the emitted spikes (per spike: ``e^2``, its table read; per synaptic event:
the two MACs and the weight read; the injected input spikes), ``spike_driven_input.<kind>``
the share of it that input spikes cause. ``brainscales2-ttfs`` prices chip power x time,
so none of its ledger scales with the spikes.

``brainscales2-ttfs`` deploys the network on BrainScaleS-2 as Göltz et al. did (16 x 16
inputs, 256-246-10, 6-bit weights): see :class:`BrainScaleS2TTFS` for the chip's limits and
the emulation time that its ledger holds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from nonvon.config import (
    device,
    flag,
    fraction,
    integer,
    ints,
    non_negative,
    number,
    numbers_of,
    optional,
    positive,
    positive_int,
    set_tuple,
)
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.simulator import Prediction, Simulator, execution_option
from nonvon.simulators.spiking.chips import quantize_symmetric
from nonvon.simulators.spiking.simulator import FP32_BYTES, spike_metrics
from nonvon.simulators.spiking.ttfs_kernels import check_neuron, ttfs_encode, update_counts
from nonvon.simulators.spiking.ttfs_training import (
    TTFSNetwork,
    TTFSTrainConfig,
    predict_ttfs,
    shift_images,
    train_ttfs,
)
from nonvon.simulators.torch_backed import TorchBacked
from nonvon.tasks import Task
from nonvon.workload import connection_sparsity

__all__ = ["TTFSConfig", "TTFSSimulator", "BrainScaleS2TTFSConfig", "BrainScaleS2TTFS",
           "check_brainscales2", "BSS2_NEURON_CIRCUITS", "BSS2_ROWS_PER_HALF"]

# BrainScaleS-2 (Pehle et al., "The BrainScaleS-2 accelerated neuromorphic system with hybrid
# plasticity", Frontiers in Neuroscience 16, 795876, 2022): 512 neuron circuits in two
# halves; each half's 256 synapse rows feed its 256 neuron columns; the sign of a synapse
# is set by its row (excitatory or inhibitory); 6-bit weight magnitudes.
BSS2_NEURON_CIRCUITS = 512
BSS2_ROWS_PER_HALF = 256
BSS2_WEIGHT_BITS = 6
SQRT_LOG_MACS = 8  # MAC-equivalents per sqrt or log (assumption, see the module docstring)
WINDOW_SAMPLES = 10_000  # training images whose output spikes set the BrainScaleS-2 run window
# The training options TTFSTrainConfig checks too, checked here first so the error names the
# simulator's option (and NaN or infinity never reaches training).
_TRAINING_NUMBERS = (("epochs", positive_int, 60), ("batch_size", positive_int, 100),
                     ("lr_step", positive_int, 15), ("lr", positive, 5e-3), ("xi", positive, 0.2),
                     ("beta", positive, 1.0), ("max_grad_norm", positive, 1.0),
                     ("alpha", non_negative, 0.005), ("bump", non_negative, 0.5),
                     ("time_noise", non_negative, 0.1))


@dataclasses.dataclass(frozen=True)
class TTFSConfig:
    """Network, neuron, coding and training settings of a TTFS simulator.

    Args:
        hidden: hidden layer widths.
        tau_syn, theta: synaptic time constant (``tau_m = 2 tau_syn``) and threshold, > 0.
        t_early, t_late: spike times of a white and a black pixel (units of ``tau_syn``;
            Göltz et al.: 0.15 and 2.0).
        crop: center-crop images larger than ``crop x crop`` to that size before
            downsampling (Göltz et al.'s 16 x 16 MNIST: 24); ``None``: no crop.
        input_side: area-downsample images larger than ``input_side x input_side`` to that
            size (smaller images are left as they are); ``None``: no downsampling.
        init: ``(mean, std)`` of each layer's initial weights relative to threshold (see
            :class:`~nonvon.simulators.spiking.ttfs_training.TTFSNetwork`).
        epochs, batch_size, lr, lr_step, lr_gamma, xi, alpha, beta, max_grad_norm, bump,
            max_silent, time_noise: training (see
            :class:`~nonvon.simulators.spiking.ttfs_training.TTFSTrainConfig`).
        augment_shift: shift training images by up to this many pixels (0: no augmentation;
            not part of Göltz et al.'s recipe).
        weight_bits: deployed weights as ``weight_bits``-bit magnitudes with a sign, one scale
            per layer, trained with them in the forward pass (``None``: fp32).
        time_budget_s: stop training after the epoch that crosses this many seconds.
        cuda_graph: on CUDA, replay each training step as one CUDA graph (a cell about 4x
            faster on an H200, the same weights); ``False``: step by step. An execution
            option: not part of ``compare``'s cache key.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        eval_batch_size: samples per evaluation batch.
    """

    hidden: tuple[int, ...] = (350,)
    tau_syn: float = 1.0
    theta: float = 1.0
    t_early: float = 0.15
    t_late: float = 2.0
    crop: int | None = None
    input_side: int | None = None
    init: tuple[tuple[float, float], ...] = ((4.0, 2.0), (4.0, 2.0))
    epochs: int = 60
    batch_size: int = 100
    lr: float = 5e-3
    lr_step: int = 15
    lr_gamma: float = 0.5
    xi: float = 0.2
    alpha: float = 0.005
    beta: float = 1.0
    max_grad_norm: float = 1.0
    bump: float = 0.5
    max_silent: tuple[float, ...] = (0.15, 0.0)
    time_noise: float = 0.1
    augment_shift: int = 0
    weight_bits: int | None = None
    time_budget_s: float | None = None
    cuda_graph: bool = execution_option(True)
    device: str = "auto"
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        set_tuple(self, "hidden", ints("hidden", self.hidden, example="(350,)"))
        check_neuron(self.tau_syn, self.theta)
        non_negative("t_early", self.t_early, example=0.15)
        positive("t_late", self.t_late, example=2.0)
        if not self.t_early < self.t_late:
            raise ConfigError(f"need 0 <= t_early < t_late < inf; got t_early={self.t_early}, "
                              f"t_late={self.t_late}", "e.g. t_early=0.15, t_late=2.0")
        optional(positive_int, "crop", self.crop, example=24)
        optional(positive_int, "input_side", self.input_side, example=16)
        set_tuple(self, "init", self._init_pairs())
        optional(positive_int, "weight_bits", self.weight_bits, example=6)
        integer("augment_shift", self.augment_shift, 0, example=1)
        optional(positive, "time_budget_s", self.time_budget_s, example=3600.0)
        device(self.device)
        positive_int("eval_batch_size", self.eval_batch_size, example=1000)
        for name, check, example in _TRAINING_NUMBERS:
            check(name, getattr(self, name), example=example)
        number("lr_gamma", self.lr_gamma, 0, 1, lo_open=True, example=0.9)
        set_tuple(self, "max_silent", numbers_of("max_silent", self.max_silent, fraction,
                                                 example="(0.15, 0.0)", nonempty=True))
        flag("cuda_graph", self.cuda_graph)
        _ = self.training  # validates the training fields

    def _init_pairs(self) -> tuple[tuple[float, float], ...]:
        try:
            pairs = tuple((number("mean", m, example=4.0), non_negative("std", sd, example=2.0))
                          for m, sd in self.init)
        except (TypeError, ValueError):  # not pairs, or a ConfigError for one number
            raise ConfigError(f"init={self.init!r} must be (mean, std) pairs of finite numbers, "
                              "std >= 0", "e.g. init=((4.0, 2.0), (4.0, 2.0))") from None
        return tuple((float(m), float(sd)) for m, sd in pairs)

    @property
    def training(self) -> TTFSTrainConfig:
        return TTFSTrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                               lr_step=self.lr_step, lr_gamma=self.lr_gamma, xi=self.xi,
                               alpha=self.alpha, beta=self.beta, max_grad_norm=self.max_grad_norm,
                               bump=self.bump, max_silent=self.max_silent,
                               time_noise=self.time_noise, cuda_graph=self.cuda_graph)


class _FakeQuant:
    """Quantized weights in the forward pass, identity gradient (straight-through)."""

    def __init__(self, levels: int):
        self.levels = levels

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w + (quantize_symmetric(w, self.levels) - w).detach()


def image_sides(shape: tuple[int, ...], crop: int | None, side: int | None) -> tuple[int | None, int | None]:
    """The crop and output side actually applied to images of ``shape`` (``None``: skipped)."""
    if len(shape) != 2 or (crop is None and side is None):
        return None, None
    have = min(shape)
    crop = crop if crop is not None and crop < have else None
    side = side if side is not None and side < (crop or have) else None
    return crop, side


def prepare_inputs(x: np.ndarray, crop: int | None, side: int | None) -> np.ndarray:
    """Center crop, area-downsample (each only where the images are larger), flatten; pixel
    values must lie in [0, 1]."""
    if x.size and (float(np.nanmin(x)) < 0 or float(np.nanmax(x)) > 1):
        raise ConfigError(f"TTFS coding needs inputs in [0, 1]; got values in "
                          f"[{float(np.nanmin(x)):g}, {float(np.nanmax(x)):g}]",
                          "rescale the task's features to [0, 1]")
    crop, side = image_sides(x.shape[1:], crop, side)
    if crop is not None:
        h, w = x.shape[1:]
        top, left = (h - crop) // 2, (w - crop) // 2
        x = x[:, top:top + crop, left:left + crop]
    if side is not None:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
        x = F.adaptive_avg_pool2d(t, side).squeeze(1).numpy()
    return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)


class TTFSSimulator(TorchBacked, Simulator):
    """A TTFS network on an event-driven digital accelerator (fp32; see the module docstring)."""

    cost_hint = 137.0
    paradigm = "spiking"
    Config = TTFSConfig
    op_kinds: ClassVar[frozenset[str]] = frozenset({"mac_fp32", "mul_fp32", "cmp_fp32", "sram_byte",
                                                    "input_spike", "host_transfer_byte"})
    quick: ClassVar[dict] = {"hidden": (32,), "epochs": 3, "batch_size": 20, "lr": 0.03,
                             "input_side": 16}

    @property
    def precision(self) -> str:
        return "fp32"  # the digital accelerator stores and computes in fp32 (module docstring)

    def __init__(self, config: TTFSConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.network: TTFSNetwork | None = None
        self.history: list[dict] = []
        self.spike_times: list[np.ndarray] | None = None  # last evaluation, per layer
        self.counts: dict[str, float] = {}       # last evaluation: events per inference
        self.event_totals: dict[str, int] = {}   # ... and their totals over the samples
        # optional (x, y) evaluated after every training epoch: accuracy in self.history
        self.monitor: tuple[np.ndarray, np.ndarray] | None = None

    # -- what it can run ---------------------------------------------------------------
    def n_inputs(self, task: Task) -> int:
        crop, side = image_sides(task.input_shape, self.config.crop, self.config.input_side)
        return side ** 2 if side else crop ** 2 if crop else task.n_features

    def check_task(self, task: Task) -> None:
        super().check_task(task)
        lo, hi = float(task.x_train.min()), float(task.x_train.max())
        if lo < 0 or hi > 1:
            raise ConfigError(f"TTFS coding needs inputs in [0, 1]; task {task.name!r} has values "
                              f"in [{lo:g}, {hi:g}]", "rescale the task's features to [0, 1]")
        self._check_sizes(self.sizes(task))

    def _check_sizes(self, sizes: tuple[int, ...]) -> None:
        """Structural limits of the device (the digital accelerator has none)."""

    def sizes(self, task: Task) -> tuple[int, ...]:
        return (self.n_inputs(task), *self.config.hidden, task.n_classes)

    # -- training ------------------------------------------------------------------------
    def encode(self, x: np.ndarray) -> torch.Tensor:
        c = self.config
        xs = torch.from_numpy(prepare_inputs(x, c.crop, c.input_side))
        return ttfs_encode(xs, t_max=c.t_late * c.tau_syn, t_min=c.t_early * c.tau_syn)

    def _build(self, task: Task, generator: torch.Generator | None = None) -> TTFSNetwork:
        c = self.config
        sizes = self.sizes(task)
        init = c.init if len(c.init) == len(sizes) - 1 else (c.init[0],) * (len(sizes) - 2) + (c.init[-1],)
        return TTFSNetwork(sizes, c.tau_syn, c.theta, init, generator=generator)

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        c = self.config
        sizes = self.sizes(task)
        torch.manual_seed(seed)
        self.network = self._build(task, torch.Generator().manual_seed(seed))
        if c.weight_bits is not None:
            self.network.weight_fn = _FakeQuant(2 ** c.weight_bits - 1)
        on_epoch = None
        if self.monitor is not None:
            t_mon, y_mon = self.encode(self.monitor[0]), torch.as_tensor(self.monitor[1])

            def on_epoch(epoch: int, rec: dict) -> None:
                rec["monitor_accuracy"] = self._accuracy(t_mon, y_mon)

        augment = None
        if c.augment_shift:
            side = math.isqrt(sizes[0])
            if len(task.input_shape) != 2 or side * side != sizes[0]:
                raise IncompatibleError(f"augment_shift needs square images; task {task.name!r} has "
                                        f"inputs {task.input_shape}", "set augment_shift=0")
            augment = shift_images(side, c.augment_shift, c.t_late * c.tau_syn)
        self.history = train_ttfs(self.network, self.encode(task.x_train), task.y_train, c.training,
                                  seed=seed, device=self.device, progress=progress,
                                  label=f"{self.name} train", time_budget_s=c.time_budget_s,
                                  on_epoch=on_epoch, augment=augment)
        self._deploy(task)

    def _accuracy(self, t_in: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy of the network in training (fake-quantized weights included)."""
        net, hits = self.network, 0
        was_training = net.training
        net.eval()
        with torch.no_grad():
            for i in range(0, len(t_in), self.config.eval_batch_size):
                t_out = net(t_in[i:i + self.config.eval_batch_size].to(self.device))[-1]
                pred = torch.where(torch.isfinite(t_out).any(1), predict_ttfs(t_out), -1)
                hits += int((pred.cpu() == y[i:i + self.config.eval_batch_size]).sum())
        net.train(was_training)
        return hits / max(len(y), 1)

    def _deploy(self, task: Task) -> None:
        """Fix the deployed weights (quantized when ``weight_bits`` is set)."""
        net = self.network.cpu()
        if net.weight_fn is not None:
            with torch.no_grad():
                for w in net.weights:
                    w.copy_(net.weight_fn(w))
            net.weight_fn = None

    # -- inference, counted --------------------------------------------------------------
    def run(self, x: np.ndarray) -> list[torch.Tensor]:
        """Spike times of every population for inputs ``x`` (input first), on the CPU."""
        net = self.network.to(self.device).eval()
        t_in = self.encode(x)
        out: list[list[torch.Tensor]] = [[] for _ in range(len(net.weights) + 1)]
        with torch.no_grad():
            for i in range(0, len(t_in), self.config.eval_batch_size):
                tb = t_in[i:i + self.config.eval_batch_size].to(self.device)
                out[0].append(tb.cpu())
                for j, t in enumerate(net(tb)):
                    out[j + 1].append(t.cpu())
        net.cpu()
        return [torch.cat(ts) for ts in out]

    def _readout(self, times: list[torch.Tensor]) -> list[torch.Tensor]:
        """Spike times as the device reports them (the digital one: all of them)."""
        return times

    def _predict(self, x: np.ndarray) -> Prediction:
        times = self._readout(self.run(x))
        t_out = times[-1]
        labels = predict_ttfs(t_out)
        labels = torch.where(torch.isfinite(t_out).any(1), labels, torch.full_like(labels, -1))
        self.spike_times = [t.numpy() for t in times]
        counts = self._count(times)
        self.event_totals = counts
        self.counts = {k: v / len(x) for k, v in counts.items()}
        ledger = OpLedger(self._ledger(counts, len(x)), n_inferences=len(x),
                          resident_bytes=self.resident_bytes())
        n_neurons = sum(t.shape[1] for t in times[1:])
        metrics = {"effective_acs": counts["synops"] / len(x), "effective_macs": 0.0,
                   "dense_ops": float(sum(a * b for a, b in zip(self.network.sizes[:-1],
                                                                self.network.sizes[1:], strict=True))),
                   "activation_sparsity": 1.0 - counts["neuron_spikes"] / (n_neurons * len(x)),
                   "footprint_bytes": float(FP32_BYTES * sum(w.numel() for w in self.network.weights)),
                   "connection_sparsity": connection_sparsity(self.network.weights)}
        driven, driven_input = self._spike_driven(counts)
        metrics.update(spike_metrics(counts["neuron_spikes"], n_neurons * len(x), driven,
                                     driven_input, len(x), counts["input_spikes"],
                                     times[0].shape[1] * len(x)))
        return Prediction(labels.numpy().astype(np.int64), ledger, metrics=metrics)

    def resident_bytes(self) -> float:
        """fp32 weights, ``A`` and ``B`` per non-input neuron, a spike-time table entry per
        neuron (module docstring)."""
        sizes = self.network.sizes
        weights = sum(w.numel() for w in self.network.weights)
        return float(FP32_BYTES * (weights + 2 * sum(sizes[1:]) + sum(sizes)))

    def _spike_driven(self, c: dict[str, int]) -> tuple[dict[str, float], dict[str, float]]:
        spikes = c["input_spikes"] + c["neuron_spikes"]
        return ({"mul_fp32": spikes, "mac_fp32": 2 * c["synops"],
                 "sram_byte": FP32_BYTES * (spikes + c["synops"]), "input_spike": c["input_spikes"]},
                {"mul_fp32": c["input_spikes"], "mac_fp32": 2 * c["synops_input"],
                 "sram_byte": FP32_BYTES * (c["input_spikes"] + c["synops_input"]),
                 "input_spike": c["input_spikes"]})

    def _count(self, times: list[torch.Tensor]) -> dict[str, int]:
        """Events of one run, from the emitted spikes (totals over the samples)."""
        net = self.network
        c = {"input_spikes": int(torch.isfinite(times[0]).sum()), "neuron_spikes": 0, "synops": 0,
             "synops_input": 0, "updates": 0, "solves": 0}
        for i, w in enumerate(net.weights):
            w = w.detach()
            fanout = (w != 0).sum(0)                                      # per presynaptic neuron
            emitted = torch.isfinite(times[i])
            synops = int((emitted.long() * fanout).sum())
            c["synops"] += synops
            if i == 0:
                c["synops_input"] = synops
            c["neuron_spikes"] += int(torch.isfinite(times[i + 1]).sum())
            for r in range(0, len(times[i]), self.config.eval_batch_size):
                up, sol = update_counts(times[i][r:r + self.config.eval_batch_size].to(self.device),
                                        w.to(self.device), net.tau_syn, net.theta)
                c["updates"] += int(up.sum())
                c["solves"] += int(sol.sum())
        return c

    def _ledger(self, c: dict[str, int], n: int) -> dict[str, float]:
        spikes = c["input_spikes"] + c["neuron_spikes"]
        n_classes = self.network.sizes[-1]
        t = {
            "mul_fp32": spikes + c["updates"],
            "mac_fp32": 2 * c["synops"] + c["updates"] + 2 * SQRT_LOG_MACS * c["solves"],
            "cmp_fp32": c["updates"] + 2 * c["solves"] + n * (n_classes - 1),
            "sram_byte": 4 * spikes + 4 * c["synops"] + 16 * c["updates"],
            "input_spike": c["input_spikes"],
            "host_transfer_byte": FP32_BYTES * n * n_classes,  # output spike times out
        }
        return {k: v for k, v in t.items() if v}


def check_brainscales2(sizes: tuple[int, ...], circuits_per_neuron: int) -> None:
    """Refuse, naming the limit and the value, a fully connected network BrainScaleS-2 cannot hold.

    A logical neuron joins ``circuits_per_neuron`` neuron circuits (multi-compartment
    connections; Pehle et al. 2022), split over the two halves, so it has
    ``256 x circuits_per_neuron`` synapses. Weights are signed but a synapse's sign comes
    from its row, so every input is given one excitatory and one inhibitory row and uses
    the synapse of the sign it needs: a neuron takes at most ``128 x circuits_per_neuron``
    inputs. Göltz et al.'s 256-246-10 uses two circuits per neuron: 256 inputs on
    2 x 256 synapses, and 2 x (246 + 10) = 512 circuits.

    Raises:
        IncompatibleError: too many circuits, or a fan-in over the synapse limit.
    """
    if isinstance(circuits_per_neuron, bool) or not isinstance(circuits_per_neuron, int) \
            or circuits_per_neuron < 1:
        raise ConfigError(f"circuits_per_neuron={circuits_per_neuron!r} must be a positive integer",
                          "e.g. circuits_per_neuron=2")
    k = circuits_per_neuron
    neurons = sum(sizes[1:])
    if neurons * k > BSS2_NEURON_CIRCUITS:
        raise IncompatibleError(
            f"brainscales2: {neurons} neurons x {k} circuit(s) each need {neurons * k} neuron "
            f"circuits; the chip has {BSS2_NEURON_CIRCUITS}",
            f"use at most {BSS2_NEURON_CIRCUITS // k - sizes[-1]} hidden neurons in total "
            f"(e.g. hidden=(246,)), or fewer circuits per neuron")
    limit = BSS2_ROWS_PER_HALF * k // 2
    for i, n_in in enumerate(sizes[:-1]):
        if n_in > limit:
            raise IncompatibleError(
                f"brainscales2: layer {i} neurons have fan-in {n_in}; with {k} circuit(s) per "
                f"neuron ({BSS2_ROWS_PER_HALF * k} synapses, one excitatory and one inhibitory row "
                f"per signed input) the limit is {limit}",
                "downsample the input (input_side=16: 256 inputs), narrow the layer, or raise "
                "circuits_per_neuron")


@dataclasses.dataclass(frozen=True)
class BrainScaleS2TTFSConfig(TTFSConfig):
    """:class:`TTFSConfig` plus the BrainScaleS-2 deployment (defaults: Göltz et al.'s
    16 x 16 MNIST setting, 256-246-10, 6-bit weights).

    Args:
        circuits_per_neuron: neuron circuits joined into one neuron (2 in Göltz et al.).
        tau_syn_hw_s: hardware seconds per unit of ``tau_syn`` (5 µs: a 5 ms synaptic time
            constant, a common biological magnitude, at the chip's 1000-fold acceleration
            (Pehle et al. 2022); the time constants are configurable on the chip, so this is
            an assumption).
        relax_tau_m: pause after each image's window for the membranes to relax, in units
            of ``tau_m`` (3: within 5% of rest before the next image; an assumption).
        window_quantile: the run window covers this quantile of the training images'
            first output spike (a fixed schedule, as on the chip); later spikes are lost.
    """

    hidden: tuple[int, ...] = (246,)
    crop: int | None = 24
    input_side: int | None = 16
    init: tuple[tuple[float, float], ...] = ((4.0, 2.0), (4.0, 2.0))
    weight_bits: int | None = BSS2_WEIGHT_BITS
    circuits_per_neuron: int = 2
    tau_syn_hw_s: float = 5e-6
    relax_tau_m: float = 3.0
    window_quantile: float = 0.99

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight_bits is None or self.weight_bits > BSS2_WEIGHT_BITS:
            raise ConfigError(f"brainscales2 synapses hold {BSS2_WEIGHT_BITS}-bit magnitudes; got "
                              f"weight_bits={self.weight_bits}", f"use weight_bits <= {BSS2_WEIGHT_BITS}")
        positive("tau_syn_hw_s", self.tau_syn_hw_s, example=5e-6)
        non_negative("relax_tau_m", self.relax_tau_m, example=3.0)
        number("window_quantile", self.window_quantile, 0, 1, lo_open=True, example=0.99)
        positive_int("circuits_per_neuron", self.circuits_per_neuron, example=2)


class BrainScaleS2TTFS(TTFSSimulator):
    """A TTFS network deployed on BrainScaleS-2 (Göltz et al. 2021's 16 x 16 MNIST setting).

    Limits (:func:`check_brainscales2`): 512 neuron circuits, ``circuits_per_neuron`` of
    them per neuron, fan-in at most ``128 x circuits_per_neuron``; 6-bit weight magnitudes
    with a sign, trained with them (straight-through) and deployed quantized.

    Time: the chip emulates the network's dynamics in continuous time, ``tau_syn_hw_s``
    seconds per unit of ``tau_syn``. Each image gets a fixed run window (the
    ``window_quantile`` of the first output spike times on the training images, at least
    the last input spike ``t_late``; output spikes after it are lost) and a pause of
    ``relax_tau_m`` membrane time constants before the next image. Synapses, neurons and
    routing are analog circuits inside the chip's power, so the ledger holds only that
    time, ``emulation_s``, priced by the ``brainscales2`` preset's chip power:

        energy per image = P_chip x (window + relax_tau_m x 2 tau_syn) x tau_syn_hw_s / tau_syn

    Nothing here is taken from Göltz et al.'s measured 8.4 µJ and 48 µs per image: the
    window comes from this network's own output spikes, the power from Cramer et al. 2022
    (see ``brainscales2.toml``). The event counts of the run are in ``sim.counts`` (and the
    result's metrics).
    """

    cost_hint = 93.0
    Config = BrainScaleS2TTFSConfig
    op_kinds: ClassVar[frozenset[str]] = frozenset({"emulation_s"})
    native_presets: ClassVar[tuple[str, ...]] = ("brainscales2",)
    quick: ClassVar[dict] = {"hidden": (32,), "epochs": 3, "batch_size": 20, "lr": 0.03}

    def __init__(self, config: BrainScaleS2TTFSConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.window: float | None = None  # in units of tau_syn

    @property
    def precision(self) -> str:
        return f"int{self.config.weight_bits + 1}"  # magnitude bits and the row's sign

    def resident_bytes(self) -> float:
        """The synapse array's weights (``weight_bits`` each; the sign is the row's); the
        neuron state is analog."""
        return sum(w.numel() for w in self.network.weights) * self.config.weight_bits / 8

    def _spike_driven(self, c: dict[str, int]) -> tuple[dict[str, float], dict[str, float]]:
        return {}, {}  # chip power x time: nothing in the ledger scales with the spikes

    # the run window is part of the deployed state: it was measured on the training images
    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {**super().state_tensors(), "window": torch.tensor(self.window, dtype=torch.float64)}

    def _load_state_tensors(self, tensors: dict, task: Task) -> None:
        tensors = dict(tensors)
        self.window = float(torch.as_tensor(tensors.pop("window")))
        super()._load_state_tensors(tensors, task)

    def _check_sizes(self, sizes: tuple[int, ...]) -> None:
        check_brainscales2(sizes, self.config.circuits_per_neuron)

    def _deploy(self, task: Task) -> None:
        super()._deploy(task)
        c = self.config
        first = self.run(task.x_train[:WINDOW_SAMPLES])[-1].min(dim=1).values
        fired = first[torch.isfinite(first)]
        q = float(torch.quantile(fired.double(), c.window_quantile)) if len(fired) else 0.0
        self.window = max(c.t_late * c.tau_syn, q)

    def _readout(self, times: list[torch.Tensor]) -> list[torch.Tensor]:
        late = times[-1] > self.window
        return [*times[:-1], torch.where(late, torch.full_like(times[-1], math.inf), times[-1])]

    def image_time_s(self) -> float:
        """Hardware seconds per image: the run window plus the relaxation pause."""
        c = self.config
        return (self.window + c.relax_tau_m * 2.0 * c.tau_syn) * c.tau_syn_hw_s / c.tau_syn

    def _ledger(self, c: dict[str, int], n: int) -> dict[str, float]:
        return {"emulation_s": n * self.image_time_s()}
