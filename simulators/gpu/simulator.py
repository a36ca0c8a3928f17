"""GPU baseline: an MLP or small CNN in PyTorch, counted op by op, optionally measured.

Modelled energy comes from the ledger (FLOPs, DRAM bytes, kernel launches) priced
on a preset such as ``gpu-h100``; when a CUDA device and NVML are present the
same network is also *measured* with NVML's energy counter, at batch 1 and at a
large batch, and reported beside the model.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError
from nonvon.errors import require_positive as _positive
from nonvon.models import cnn, mlp, train_classifier
from nonvon.result import Measurement
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.simulators.gpu.counting import OpCounter
from nonvon.simulators.torch_backed import TorchBacked
from nonvon.tasks import Task

__all__ = ["GpuConfig", "GpuMLP", "GpuCNN", "GpuBaseline"]


@dataclasses.dataclass(frozen=True)
class GpuConfig:
    """Network, training budget and execution settings of the GPU baseline.

    Args:
        model: ``"mlp"`` or ``"cnn"``.
        hidden: MLP hidden widths.
        channels, dense: CNN conv channels per block and hidden dense width.
        dropout: dropout rate in training.
        epochs, batch_size, lr, weight_decay: Adam with cosine decay.
        dtype: inference precision, ``"fp32"`` or ``"bf16"`` (training is fp32).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        eval_batch_size: batch size of the counted evaluation (sets the per-inference
            share of weight traffic and kernel launches).
        measure_energy: measure with NVML when CUDA is present.
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
        if self.model not in ("mlp", "cnn"):
            raise ConfigError(f"unknown model {self.model!r}", "use 'mlp' or 'cnn'")
        if self.dtype not in ("fp32", "bf16"):
            raise ConfigError(f"unknown dtype {self.dtype!r}", "use 'fp32' or 'bf16'")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"unknown device {self.device!r}", "use 'auto', 'cpu' or 'cuda'")
        for name in ("epochs", "batch_size", "eval_batch_size", "dense"):
            _positive(name, getattr(self, name))
        _positive("lr", self.lr, float)
        for name in ("hidden", "channels", "measure_batches"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            for v in getattr(self, name):
                _positive(f"{name} entry", v)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)", "e.g. dropout=0.2")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay={self.weight_decay} must be >= 0", "e.g. weight_decay=0.0")


class GpuBaseline(TorchBacked, Simulator):
    """A PyTorch classifier on a GPU (or the CPU standing in for one)."""

    paradigm = "gpu"
    Config = GpuConfig

    @property
    def op_kinds(self) -> frozenset[str]:
        dt = self.config.dtype
        return frozenset({f"mac_{dt}", f"add_{dt}", f"cmp_{dt}", "dram_byte", "kernel_launch"})

    def __init__(self, config: GpuConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.network: torch.nn.Module | None = None

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
        c = self.config
        train_classifier(self.network, task.x_train, task.y_train, epochs=c.epochs,
                         batch_size=c.batch_size, lr=c.lr, weight_decay=c.weight_decay, seed=seed,
                         device=self.device, progress=progress, label=f"{self.name} train")

    def _predict(self, x: np.ndarray) -> Prediction:
        dtype = torch.bfloat16 if self.config.dtype == "bf16" else torch.float32
        net = self.network.to(self.device, dtype).eval()
        xt = torch.from_numpy(x).to(self.device, dtype)
        labels = []
        counter = OpCounter(net, self.config.dtype)
        with torch.inference_mode(), counter:
            for i in range(0, len(xt), self.config.eval_batch_size):
                logits = net(xt[i:i + self.config.eval_batch_size])
                counter.count_argmax(logits)
                labels.append(logits.argmax(1).cpu())
        measurements = self._measure(net, xt) if self.measures_hardware else ()
        self.network.float()
        return Prediction(torch.cat(labels).numpy(), OpLedger(counter.nonzero(), len(xt)),
                          measurements)

    @property
    def measures_hardware(self) -> bool:
        if not (self.config.measure_energy and self.device.type == "cuda"):
            return False
        from nonvon.energy_models.nvml import nvml_available

        return nvml_available()

    def _measure(self, net: torch.nn.Module, xt: torch.Tensor) -> tuple[Measurement, ...]:
        from nonvon.energy_models.nvml import measure_gpu_energy

        out = []
        for b in self.config.measure_batches:
            reps = -(-b // len(xt))  # repeat the test set if the batch is larger than it
            batch = xt.repeat((reps,) + (1,) * (xt.dim() - 1))[:b].contiguous()

            def run(batch=batch):
                with torch.inference_mode():
                    net(batch).argmax(1)

            m = measure_gpu_energy(run, b, sync=torch.cuda.synchronize)
            out.append(Measurement(f"nvml-{self.config.dtype}-b{b}", m["energy_per_inference_j"],
                                   m["latency_per_inference_s"], b, m))
        return tuple(out)


class GpuMLP(GpuBaseline):
    """GPU baseline with the MLP (784-512-512-10 on MNIST)."""

    quick: ClassVar[dict] = {"epochs": 5, "hidden": (128,), "batch_size": 32}

    def __init__(self, config: GpuConfig | None = None, /, **overrides):
        super().__init__(config or GpuConfig(model="mlp"), **overrides)


class GpuCNN(GpuBaseline):
    """GPU baseline with the small CNN (conv32-conv64-256 on MNIST)."""

    quick: ClassVar[dict] = {"epochs": 3, "channels": (8, 16), "dense": 64, "batch_size": 32}

    def __init__(self, config: GpuConfig | None = None, /, **overrides):
        super().__init__(config or GpuConfig(model="cnn", epochs=15, dropout=0.3), **overrides)
