"""``snn-converted``: the GPU-baseline MLP, trained as a ReLU network and converted to IF neurons.

Training is the GPU baseline's (``nonvon.models.mlp`` and ``train_classifier``); the trained
network is converted by :func:`nonvon.simulators.spiking.conversion.convert_mlp` (IF neurons,
reset by subtraction, constant analog input, max or 99.9th-percentile normalization on
training activations) and run for ``timesteps`` steps as an event-driven spiking network,
counted like ``snn-mlp`` (the analog first layer in ``mac_fp32``, the rest in synaptic
events; the analog inputs in and the class scores out as ``host_transfer_byte``; fp32).
``sim.ann_accuracy(task)`` gives the source network's accuracy for comparison. The trained
state (:meth:`state_tensors`) is the converted network (``snn.*``) and its source (``ann.*``).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from nonvon.config import (
    choice,
    device,
    fraction,
    ints,
    number,
    positive,
    positive_int,
    set_tuple,
)
from nonvon.models import mlp, train_classifier
from nonvon.simulators.spiking.coding import check_timesteps
from nonvon.simulators.spiking.conversion import NORMALIZATIONS, convert_mlp
from nonvon.simulators.spiking.networks import LIFConfig, SpikingClassifier, spiking_mlp
from nonvon.simulators.spiking.simulator import SpikingSimulator
from nonvon.tasks import Task

__all__ = ["ConvertConfig", "ConvertedSNN"]


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """Source network, its training, and the conversion.

    Args:
        hidden, dropout, epochs, batch_size, lr: the ReLU MLP and its training (as ``gpu-mlp``).
        timesteps: ``T`` of the converted network.
        normalization: ``"max"`` or ``"percentile"``; ``percentile`` for the latter.
        norm_samples: training samples used to measure activations.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; eval_batch_size: counted batch size.
    """

    hidden: tuple[int, ...] = (512, 512)
    dropout: float = 0.2
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    timesteps: int = 64
    normalization: str = "percentile"
    percentile: float = 99.9
    norm_samples: int = 10000
    device: str = "auto"
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        set_tuple(self, "hidden", ints("hidden", self.hidden, example="(512, 512)"))
        for name, example in (("epochs", 20), ("batch_size", 128), ("norm_samples", 10000),
                              ("eval_batch_size", 256)):
            positive_int(name, getattr(self, name), example=example)
        positive("lr", self.lr, example=1e-3)
        check_timesteps(self.timesteps)
        choice("normalization", self.normalization, NORMALIZATIONS)
        number("percentile", self.percentile, 0, 100, lo_open=True, example=99.9)
        fraction("dropout", self.dropout, example=0.2, hi_open=True)
        device(self.device)

    # what the shared spiking machinery reads
    model: ClassVar[str] = "mlp"
    coding: ClassVar[str] = "direct"


class ConvertedSNN(SpikingSimulator):
    """A trained ReLU MLP converted to integrate-and-fire neurons (Rueckauer et al. 2017)."""

    cost_hint = 19.0
    Config = ConvertConfig
    quick: ClassVar[dict] = {"hidden": (64,), "epochs": 5, "batch_size": 32, "timesteps": 32,
                             "norm_samples": 500}

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        c = self.config
        torch.manual_seed(seed)
        self.ann = mlp(task.n_features, c.hidden, task.n_classes, c.dropout)
        train_classifier(self.ann, task.x_train, task.y_train, epochs=c.epochs,
                         batch_size=c.batch_size, lr=c.lr, seed=seed, device=self.device,
                         progress=progress, label=f"{self.name} train ANN")
        self.ann.cpu().eval()
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(task.x_train), min(c.norm_samples, len(task.x_train)), replace=False)
        self.network = convert_mlp(self.ann, task.x_train[np.sort(idx)], c.timesteps,
                                   task.input_shape, c.normalization, c.percentile)
        self._counter = None

    def _build(self, task: Task) -> SpikingClassifier:
        """The converted network's shape: IF neurons (threshold 1, reset by subtraction),
        constant analog input (as :func:`convert_mlp` builds it)."""
        lif = LIFConfig(timesteps=self.config.timesteps, beta=1.0, threshold=1.0,
                        reset="subtract", coding="direct")
        return spiking_mlp(task.n_features, self.config.hidden, task.n_classes, lif,
                           task.input_shape)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"snn.{k}": v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
        out.update({f"ann.{k}": v.detach().cpu().contiguous() for k, v in self.ann.state_dict().items()})
        return out

    def _load_state_tensors(self, tensors: dict, task: Task) -> None:
        c = self.config
        snn = {k[4:]: torch.as_tensor(v) for k, v in tensors.items() if k.startswith("snn.")}
        ann = {k[4:]: torch.as_tensor(v) for k, v in tensors.items() if k.startswith("ann.")}
        super()._load_state_tensors(snn, task)
        self.ann = mlp(task.n_features, c.hidden, task.n_classes, c.dropout)
        self.ann.load_state_dict(ann)
        self.ann.eval()

    def ann_accuracy(self, task: Task, split: str = "test") -> float:
        """Accuracy of the source ReLU network on ``split``."""
        x, y = task.split(split)
        with torch.no_grad():
            return float((self.ann(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
