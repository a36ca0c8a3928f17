"""A worked example of a nonvon device plugin: int8 nearest-centroid on a toy edge NPU.

This one file is the whole plugin (see ``docs/adding-a-device.md``). The device is
hypothetical: a small int8 inference engine with a bank of on-chip SRAM, an array of
int8 multiply-accumulate lanes feeding int32 accumulators, and a scalar int32 output
stage. The model is the simplest classifier that still learns something: one centroid
(the mean training input) per class, quantized to int8, and the nearest centroid wins.

With ``x`` and every centroid ``c`` quantized on one shared scale,
``argmin_c ||x - c||^2 = argmax_c (2 x.c - ||c||^2)``, so one inference is

1. read the input (``n_features`` bytes) from SRAM;
2. for each input that is not zero (the NPU gates zero activations; with
   ``skip_zeros=False`` for every input), fetch that input's column of int8 weights
   (``n_classes`` bytes) and do ``n_classes`` int8 MACs into the int32 accumulators;
3. per class, read the int32 bias ``||c||^2`` (4 bytes) and subtract it from the
   doubled accumulator (the doubling is a wired shift, no operation);
4. ``n_classes - 1`` int32 compares for the argmax, and one byte written for the label.

``_predict`` executes exactly these steps, one sample at a time as the batch-1 device
would, and counts what each step touched. Quantizing the input to int8 stands for the
sensor's 8-bit ADC and happens before the device, so it is not counted.

Register it with one line in the distribution's ``pyproject.toml``::

    [project.entry-points."nonvon.simulators"]
    toy-npu = "toy_npu:ToyNPU"

and price it with ``docs/examples/toy-npu.toml`` (``--preset docs/examples/toy-npu.toml``,
or the ``nonvon.presets`` entry point ``toy-npu = "toy_npu:PRESET_FILE"``).

Example:
    >>> import nonvon
    >>> from toy_npu import PRESET_FILE, ToyNPU
    >>> task = nonvon.registry().task("digits")
    >>> result = ToyNPU().fit(task).evaluate(task)
    >>> result.priced(nonvon.load_preset(PRESET_FILE)).energy.energy_j  # J per inference
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import ClassVar

import numpy as np

from nonvon import Capabilities, ConfigError, OpLedger, Prediction, Simulator, Task

__all__ = ["ToyNPU", "ToyNPUConfig", "PRESET_FILE", "quantize"]

#: The preset that prices this device, for the ``nonvon.presets`` entry point.
PRESET_FILE = Path(__file__).with_name("toy-npu.toml")

BIAS_BYTES = 4  # one int32 per class
LABEL_BYTES = 1


@dataclasses.dataclass(frozen=True)
class ToyNPUConfig:
    """Settings of the toy NPU.

    Args:
        bits: precision of weights and inputs, 2..8 (held in int8 registers either way).
        skip_zeros: gate MACs whose input is zero and skip fetching their weights.
        sram_kib: on-chip SRAM in KiB; the weights, one input and the biases must fit.
    """

    bits: int = 8
    skip_zeros: bool = True
    sram_kib: int = 64

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 2 <= self.bits <= 8:
            raise ConfigError(f"bits={self.bits!r} must be an integer in [2, 8]",
                              "the datapath is int8; e.g. bits=8")
        if not isinstance(self.skip_zeros, bool):
            raise ConfigError(f"skip_zeros={self.skip_zeros!r} must be True or False")
        if isinstance(self.sram_kib, bool) or not isinstance(self.sram_kib, int) or self.sram_kib < 1:
            raise ConfigError(f"sram_kib={self.sram_kib!r} must be a positive integer", "e.g. sram_kib=64")


def quantize(x: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """Symmetric uniform quantization to ``bits`` signed bits, stored as int8."""
    qmax = 2 ** (bits - 1) - 1
    return np.clip(np.rint(x / scale), -qmax, qmax).astype(np.int8)


class ToyNPU(Simulator):
    """Nearest-centroid classifier with int8 centroids on a toy edge NPU (worked example)."""

    paradigm = "gpu"  # the conventional-digital family: priced by the CMOS presets too
    Config = ToyNPUConfig
    op_kinds: ClassVar[frozenset[str]] = frozenset({"mac_int8", "add_int32", "cmp_int32", "sram_byte",
                                                    "host_transfer_byte"})
    max_classes: ClassVar[int] = 16  # int32 accumulators in the output stage

    def __init__(self, config: ToyNPUConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.weights: np.ndarray | None = None  # (n_classes, n_features) int8
        self.bias: np.ndarray | None = None  # (n_classes,) int32, ||c||^2
        self.scale = 1.0

    @property
    def capabilities(self) -> Capabilities:
        # Worst case, max_classes weight rows plus one input and the biases fill the SRAM.
        sram = self.config.sram_kib * 1024 - self.max_classes * BIAS_BYTES
        return Capabilities(max_features=sram // (self.max_classes + 1), max_classes=self.max_classes)

    @property
    def n_params(self) -> int:
        return 0 if self.weights is None else self.weights.size + self.bias.size

    @property
    def precision(self) -> str:
        return f"int{self.config.bits}"

    # The trained state as arrays, so a cached cell can be recounted without refitting.
    def state_tensors(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "bias": self.bias, "scale": np.array([self.scale])}

    def _load_state_tensors(self, tensors: dict, task: Task) -> None:
        self.weights = np.asarray(tensors["weights"], dtype=np.int8)
        self.bias = np.asarray(tensors["bias"], dtype=np.int32)
        self.scale = float(np.asarray(tensors["scale"])[0])

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        # Class means have no randomness: the seed is accepted and has nothing to do.
        x = task.x_train.reshape(len(task.x_train), -1)
        missing = sorted(set(range(task.n_classes)) - set(np.unique(task.y_train).tolist()))
        if missing:
            raise ConfigError(f"task {task.name!r} has no training samples of classes {missing}",
                              "every class needs at least one training sample for its centroid")
        centroids = np.stack([x[task.y_train == k].mean(axis=0) for k in range(task.n_classes)])
        qmax = 2 ** (self.config.bits - 1) - 1
        self.scale = float(np.abs(x).max()) / qmax or 1.0
        self.weights = quantize(centroids, self.scale, self.config.bits)
        self.bias = (self.weights.astype(np.int32) ** 2).sum(axis=1)

    def _predict(self, x: np.ndarray) -> Prediction:
        xq = quantize(x.reshape(len(x), -1), self.scale, self.config.bits)  # the sensor's ADC
        labels = np.empty(len(xq), dtype=np.int64)
        counts: Counter[str] = Counter()
        for i, sample in enumerate(xq):
            labels[i] = self._infer_one(sample, counts)
        # Resident on chip: the int8 centroids and the int32 biases (pricing places them).
        resident = self.weights.size + self.bias.size * BIAS_BYTES
        return Prediction(labels, OpLedger(counts, n_inferences=len(xq), resident_bytes=resident))

    def _infer_one(self, sample: np.ndarray, counts: Counter[str]) -> int:
        """One inference as the device runs it; adds what it touched to ``counts``."""
        n_classes = len(self.weights)
        counts["host_transfer_byte"] += sample.size  # the int8 input arrives from the host
        counts["sram_byte"] += sample.size  # read the input
        cols = np.flatnonzero(sample) if self.config.skip_zeros else np.arange(sample.size)
        columns = self.weights[:, cols]  # fetch only the weight columns that are used
        counts["sram_byte"] += columns.size
        acc = columns.astype(np.int32) @ sample[cols].astype(np.int32)
        counts["mac_int8"] += columns.size  # one MAC per fetched weight
        counts["sram_byte"] += n_classes * BIAS_BYTES
        scores = (acc << 1) - self.bias
        counts["add_int32"] += scores.size
        best = 0
        for k in range(1, n_classes):  # the compare chain of the output stage
            counts["cmp_int32"] += 1
            if scores[k] > scores[best]:
                best = k
        counts["sram_byte"] += LABEL_BYTES
        counts["host_transfer_byte"] += LABEL_BYTES  # the label goes back to the host
        return best
