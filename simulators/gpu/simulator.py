"""GPU baseline: an MLP or small CNN in PyTorch, counted op by op, optionally measured.

Modelled energy comes from the ledger (MACs, on-chip memory bytes, host transfers,
kernel launches) priced on a preset such as ``gpu-h100`` or a digital accelerator
(``npu-7nm``); when a CUDA device and NVML are present the same network is also
*measured* with NVML's energy counter, at batch 1 and at a large batch, and reported
beside the model.

Precision is matched, stated and set (DESIGN.md 2b): ``dtype="fp32"`` runs with TF32
switched off (so the GPU's fp32 matmuls are the CUDA-core fp32 the presets price),
``"bf16"`` runs the network in bf16, and ``"int8"`` quantizes the fp32-trained network
after training (:mod:`.quantize`: per-channel int8 weights, int8 activations
calibrated on the training data, int32 accumulation) and infers on the integer grid.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import ClassVar

import numpy as np
import torch

from nonvon.config import (
    choice,
    device,
    flag,
    fraction,
    ints,
    non_negative,
    positive,
    positive_int,
    set_tuple,
)
from nonvon.errors import ConfigError
from nonvon.models import cnn, mlp
from nonvon.result import Measurement
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.simulators.gpu.counting import OpCounter, op_kinds_for
from nonvon.simulators.gpu.quantize import int8_skeleton, quantize_input, quantize_int8
from nonvon.simulators.torch_backed import TorchBacked
from nonvon.tasks import Task
from nonvon.training_memo import training_recipe

__all__ = ["GpuConfig", "GpuMLP", "GpuCNN", "GpuBaseline", "GpuMLPInt8", "GpuMLPBf16",
           "GpuCNNInt8", "GpuCNNBf16", "matmul_precision"]

DTYPES = ("fp32", "bf16", "int8")
MODELS = ("mlp", "cnn")
_TORCH_DTYPE = {"fp32": torch.float32, "bf16": torch.bfloat16}


@contextlib.contextmanager
def matmul_precision(dtype: str, *, tf32: bool = False):
    """Run fp32 matmuls and convolutions as true fp32 (TF32 off; ``tf32=True``: on, for the
    TF32 measurement beside it) while inside; restore the caller's settings afterwards.
    Yields the TF32 settings in force, for the record."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield {"precision": dtype, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
               "tf32_cudnn": torch.backends.cudnn.allow_tf32}
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


@dataclasses.dataclass(frozen=True)
class GpuConfig:
    """Network, training budget and execution settings of the GPU baseline.

    Args:
        model: ``"mlp"`` or ``"cnn"``.
        hidden: MLP hidden widths.
        channels, dense: CNN conv channels per block and hidden dense width.
        dropout: dropout rate in training.
        epochs, batch_size, lr, weight_decay: Adam with cosine decay.
        dtype: inference precision: ``"fp32"`` (TF32 off), ``"bf16"`` or ``"int8"``
            (post-training quantization of the fp32-trained network; training is fp32).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        eval_batch_size: batch size of the counted evaluation (sets the per-inference
            share of weight traffic and kernel launches).
        measure_energy: measure with NVML when CUDA is present (fp32 is measured twice,
            with TF32 off as priced and with TF32 on; int8 is measured for the MLP, whose
            layers run on the int8 tensor cores).
        measure_batches: batch sizes measured with NVML.
    """

    model: str = "mlp"
    hidden: tuple[int, ...] = (512, 512)
    channels: tuple[int, ...] = (32, 64)
    dense: int = 256
    dropout: float = 0.2
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    dtype: str = "fp32"
    device: str = "auto"
    eval_batch_size: int = 1024
    measure_energy: bool = True
    measure_batches: tuple[int, ...] = (1, 1024)

    def __post_init__(self) -> None:
        choice("model", self.model, MODELS)
        choice("dtype", self.dtype, DTYPES)
        device(self.device)
        for name, example in (("epochs", 20), ("batch_size", 128), ("eval_batch_size", 1024),
                              ("dense", 256)):
            positive_int(name, getattr(self, name), example=example)
        positive("lr", self.lr, example=1e-3)
        for name, example in (("hidden", "(512, 512)"), ("channels", "(32, 64)"),
                              ("measure_batches", "(1, 1024)")):
            set_tuple(self, name, ints(name, getattr(self, name), example=example))
        fraction("dropout", self.dropout, example=0.2, hi_open=True)
        non_negative("weight_decay", self.weight_decay, example=0.0)
        flag("measure_energy", self.measure_energy)


class GpuBaseline(TorchBacked, Simulator):
    """A PyTorch classifier on a GPU (or the CPU standing in for one)."""

    paradigm = "gpu"
    Config = GpuConfig
    memoizes_training = True  # fp32, bf16 and int8 cells of one network train it once

    @property
    def op_kinds(self) -> frozenset[str]:
        return op_kinds_for(self.config.dtype)

    def __init__(self, config: GpuConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.network: torch.nn.Module | None = None
        self.int8_network: torch.nn.Module | None = None  # dtype="int8": the quantized network

    @property
    def capabilities(self) -> Capabilities:
        kinds = ("image",) if self.config.model == "cnn" else ("image", "vector")
        return Capabilities(input_kinds=kinds)

    def check_task(self, task: Task) -> None:
        super().check_task(task)
        if self.config.model == "cnn" and task.input_shape[0] != task.input_shape[1]:
            raise ConfigError(f"the CNN takes square images; task {task.name!r} has {task.input_shape}",
                              "use gpu-mlp, or resize the images to a square")

    def _build(self, task: Task) -> torch.nn.Module:
        c = self.config
        if c.model == "mlp":
            return mlp(task.n_features, c.hidden, task.n_classes, c.dropout)
        return cnn(task.input_shape[0], c.channels, c.dense, task.n_classes, c.dropout)

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        torch.manual_seed(seed)
        self.network = self._build(task)
        # Training keeps PyTorch's default math settings (what the cached cells were trained
        # with); only inference, which is counted, priced and measured, sets its precision.
        # fp32, bf16 and int8 cells of one network train the same fp32 weights: in a compare
        # (a memo folder in the run context) the first trains and the others load it.
        self._training_shared = self._train_shared(task, seed=seed, progress=progress)
        if self.config.dtype == "int8":
            # Post-training quantization, calibrated on the training split: close enough to
            # fp32 that no quantization-aware training is needed (docs/results/mnist-comparison).
            self.int8_network = quantize_int8(self.network, torch.from_numpy(task.x_train))

    def _training_recipe(self, task: Task, seed: int) -> dict:
        """What determines the trained fp32 weights: every option but the inference precision
        and the execution settings, and where training ran."""
        skip = {"dtype", "device", "eval_batch_size", "measure_energy", "measure_batches"}
        settings = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)
                    if f.name not in skip}
        return training_recipe("dense classifier (nonvon.models.train_classifier)", task,
                               settings, seed, self.device)

    def _inference_network(self) -> tuple[torch.nn.Module, object]:
        """The network that runs at ``config.dtype`` and a function preparing its inputs."""
        dt = self.config.dtype
        if dt == "int8":
            net = self.int8_network.to(self.device).eval()
            scale = float(net.input_scale)
            return net, lambda x: quantize_input(x, scale)
        net = self.network.to(self.device, _TORCH_DTYPE[dt]).eval()
        return net, lambda x: x.to(_TORCH_DTYPE[dt])

    def _predict(self, x: np.ndarray) -> Prediction:
        net, prepare = self._inference_network()
        xt = prepare(torch.from_numpy(x).to(self.device))
        labels = []
        counter = OpCounter(net, self.config.dtype)
        with matmul_precision(self.config.dtype), torch.inference_mode(), counter:
            for i in range(0, len(xt), self.config.eval_batch_size):
                batch = xt[i:i + self.config.eval_batch_size]
                counter.count_input(batch)
                logits = net(batch)
                counter.count_argmax(logits)
                labels.append(logits.argmax(1).cpu())
        metrics = counter.neurobench_metrics(len(xt))
        measurements = self._measure(net, xt) if self.measures_hardware else ()
        self.network.float()
        if getattr(self, "_training_shared", False):
            metrics["training_shared"] = 1.0
        return Prediction(torch.cat(labels).numpy(), counter.ledger(len(xt)), measurements, metrics)

    @property
    def measures_hardware(self) -> bool:
        # The int8 CNN is modelled, not measured: its integer convolutions run exactly in
        # float64 (gpu/quantize.py), so NVML would meter FP64 work rather than the int8 tensor
        # cores the preset prices. The int8 MLP's layers run on them (torch._int_mm).
        if not (self.config.measure_energy and self.device.type == "cuda") or (
                self.config.dtype == "int8" and self.config.model != "mlp"):
            return False
        from nonvon.energy_models.nvml import nvml_available

        return nvml_available()

    def _measure(self, net: torch.nn.Module, xt: torch.Tensor) -> tuple[Measurement, ...]:
        from nonvon.energy_models.nvml import measure_gpu_energy, measure_idle_power

        out = []
        # idle power once per cell, subtracted from each of its measurements (an idle window
        # per measurement would double the time this cell holds the GPU alone)
        idle_w = measure_idle_power()
        # fp32 is measured as priced (TF32 off) and, beside it, with TF32 on: the tensor-core
        # fp32 most PyTorch users get by default.
        variants = [(self.config.dtype, False)] + ([("tf32", True)] if self.config.dtype == "fp32"
                                                   else [])
        for b in self.config.measure_batches:
            reps = -(-b // len(xt))  # repeat the test set if the batch is larger than it
            batch = xt.repeat((reps,) + (1,) * (xt.dim() - 1))[:b].contiguous()

            def run(batch=batch):
                with torch.inference_mode():
                    net(batch).argmax(1)

            for label, tf32 in variants:
                # The measurement runs at the precision it is named for, and says so.
                with matmul_precision(self.config.dtype, tf32=tf32) as settings:
                    m = measure_gpu_energy(run, b, sync=torch.cuda.synchronize, idle_w=idle_w)
                if m["energy_per_inference_j"] <= 0:
                    # below the counter's noise floor (busy power under the idle reading,
                    # seen for the int8 MLP at batch 1): no measurement to report
                    continue
                m = {**m, **settings, "precision": label,
                     "input_dtype": str(batch.dtype).removeprefix("torch.")}
                out.append(Measurement(f"nvml-{label}-b{b}", m["energy_per_inference_j"],
                                       m["latency_per_inference_s"], b, m))
        return tuple(out)

    # -- trained state: the fp32 network, and for int8 the quantized one with its scales --
    def state_tensors(self) -> dict[str, torch.Tensor]:
        state = super().state_tensors()
        if self.config.dtype != "int8":
            return state
        q = {f"int8.{k}": v.detach().cpu().contiguous()
             for k, v in self.int8_network.state_dict().items()}
        return {**{f"fp32.{k}": v for k, v in state.items()}, **q}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor], task: Task) -> None:
        if self.config.dtype != "int8":
            return super()._load_state_tensors(tensors, task)
        fp32 = {k.removeprefix("fp32."): v for k, v in tensors.items() if k.startswith("fp32.")}
        int8 = {k.removeprefix("int8."): v for k, v in tensors.items() if k.startswith("int8.")}
        if not int8 or len(fp32) + len(int8) != len(tensors):
            raise ConfigError("an int8 GPU baseline's state has 'fp32.*' and 'int8.*' tensors",
                              "load the state saved by a simulator with dtype='int8'")
        super()._load_state_tensors(fp32, task)
        self.int8_network = int8_skeleton(self.network)
        self.int8_network.load_state_dict({k: torch.as_tensor(v) for k, v in int8.items()})


class GpuMLP(GpuBaseline):
    """GPU baseline with the MLP (784-512-512-10 on MNIST)."""

    fixed: ClassVar[tuple[str, ...]] = ("model",)
    defaults: ClassVar[dict] = {"model": "mlp"}
    quick: ClassVar[dict] = {"epochs": 5, "hidden": (128,), "batch_size": 32}
    cost_hint = 20.0  # its training (17 to 21 s alone)


class GpuCNN(GpuBaseline):
    """GPU baseline with the small CNN (conv32-conv64-256 on MNIST)."""

    fixed: ClassVar[tuple[str, ...]] = ("model",)
    defaults: ClassVar[dict] = {"model": "cnn", "epochs": 15, "dropout": 0.3}
    quick: ClassVar[dict] = {"epochs": 3, "channels": (8, 16), "dense": 64, "batch_size": 32}
    cost_hint = 68.0  # its training


# The matched-precision baselines (DESIGN.md 2b): the same networks and training, inferred in
# int8 or bf16. Registered under their own names so a comparison lists them as rows; the
# precision is the class's, as the model is.
class GpuMLPInt8(GpuMLP):
    """The MLP baseline quantized to int8 after training (integer inference)."""

    fixed: ClassVar[tuple[str, ...]] = ("model", "dtype")
    defaults: ClassVar[dict] = {**GpuMLP.defaults, "dtype": "int8"}


class GpuMLPBf16(GpuMLP):
    """The MLP baseline inferred in bf16."""

    fixed: ClassVar[tuple[str, ...]] = ("model", "dtype")
    defaults: ClassVar[dict] = {**GpuMLP.defaults, "dtype": "bf16"}


class GpuCNNInt8(GpuCNN):
    """The CNN baseline quantized to int8 after training (integer inference)."""

    fixed: ClassVar[tuple[str, ...]] = ("model", "dtype")
    defaults: ClassVar[dict] = {**GpuCNN.defaults, "dtype": "int8"}


class GpuCNNBf16(GpuCNN):
    """The CNN baseline inferred in bf16."""

    fixed: ClassVar[tuple[str, ...]] = ("model", "dtype")
    defaults: ClassVar[dict] = {**GpuCNN.defaults, "dtype": "bf16"}
