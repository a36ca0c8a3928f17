"""Hyperdimensional classifiers: torchhd encoders and learners, bit-packed binary inference.

A sample arrives from the host, is quantized, encoded into a ``D``-bit hypervector by a
random-projection or ID-level encoder (:mod:`.encoders`), and compared with one
hypervector per class (:mod:`.learners`):

* ``model="bsc"``: binary class vectors packed into uint64 words; similarity is
  ``popcount(query XOR class)`` per word (:mod:`.packing`), the label the nearest class.
  Counted per inference: ``C * 64 * ceil(D / 64)`` XOR bits, as many bits into
  popcounts and read from the associative memory (the padded bits are processed by the
  word-wide datapath too), and ``C - 1`` integer compares for the arg-min.
* ``model="map"``: float32 class vectors (normalized), similarity is the dot product with
  the bipolar query: one float add or subtract per dimension and class (a +-1 multiply
  is a sign flip), ``4 C D`` bytes read, ``C - 1`` float compares.

Input and output (class ``io``): the host sends each feature as one 8-bit code (the
image tasks' pixels; two bytes when the encoder resolves more than 256 levels, which the
host then quantizes itself) and reads back the class index (``host_transfer_byte``). The
chip requantizes an 8-bit code to the encoder's ``L < 256`` levels by a binary search over
the ``L - 1`` level boundaries: ``ceil(log2 L)`` 8-bit compares per feature (``cmp_int8``),
none when ``L = 256``.

Memory: a ledger's ``resident_bytes`` is what the chip holds for these reads -- the
encoder's item memory and constants (:meth:`.ProjectionEncoder.resident_bytes`,
:meth:`.IDLevelEncoder.resident_bytes`) and the class vectors, packed (BSC) or float32 (MAP).
Pricing places it in the preset's on-chip memory.

NeuroBench figures (:mod:`nonvon.workload`): ``footprint_bytes`` in the metrics is that
resident model, at its stored precision (packed bits, float32 MAP class vectors). The
others have no counterpart here and are left out, not set to zero: binding, bundling and
the similarity search are bitwise or +-1 operations between hypervectors, not weighted
synapses with activations, so connection sparsity, activation sparsity, effective MACs /
ACs and dense ops are undefined.

Predictions of the packed path equal those of torchhd's own unpacked
``hamming_similarity`` on the same vectors (:meth:`HDCSimulator.predict_unpacked`, and
the tests assert it over whole test splits).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import ClassVar

import numpy as np
import torch

from nonvon.config import choice, flag, fraction, integer, number, optional, positive_int
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, IncompatibleError, NonvonError
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.simulators.hdc.design import DesignedIDLevelEncoder
from nonvon.simulators.hdc.encoders import ENCODER_TYPES, IDLevelEncoder, ProjectionEncoder, quantize
from nonvon.simulators.hdc.learners import (
    LEARNERS,
    MODELS,
    binarize,
    bipolar,
    normalize,
    train_class_vectors,
)
from nonvon.simulators.hdc.lowdim import MAX_SUM, LearnedEncoder, binarize_inputs
from nonvon.simulators.hdc.packing import (
    WORD_BITS,
    check_packable,
    hamming_packed,
    memory_bytes,
    n_words,
    pack_bits,
)
from nonvon.tasks import Task

__all__ = ["HDCConfig", "HDCSimulator", "HDCProjection", "HDCIDLevel", "ENCODERS", "ACTIVATIONS",
           "LowDimConfig", "HDCLowDim", "LOWDIM_ENCODERS", "LOWDIM_LEARNERS"]

ENCODERS = tuple(ENCODER_TYPES)
ACTIVATIONS = ("periodic", "sign")
# The host's code for one input feature: the 8-bit pixels of the image tasks.
HOST_LEVELS = 256


@dataclasses.dataclass(frozen=True)
class _HDCOptions:
    """What every HDC classifier chooses: its encoder, class-vector model, learner and ``D``
    (documented in :class:`HDCConfig` and :class:`LowDimConfig`)."""

    encoder: str = "projection"
    model: str = "bsc"
    learner: str = "adapthd"
    dimensions: int = 10_000
    pad: bool = True

    def _check_options(self, encoders, learners) -> None:
        choice("encoder", self.encoder, encoders)
        choice("model", self.model, MODELS)
        choice("learner", self.learner, learners)
        flag("pad", self.pad)


@dataclasses.dataclass(frozen=True)
class _Retraining:
    """The class-vector retraining budget of the iterative learners (see :class:`HDCConfig`).
    A separate base so each config keeps its own field order (dataclass fields follow the
    bases' order)."""

    epochs: int = 10
    lr: float = 0.05
    margin: float = 0.02
    batch_size: int = 256

    def _check_retraining(self) -> None:
        positive_int("epochs", self.epochs, example=20)
        positive_int("batch_size", self.batch_size, example=256)
        number("lr", self.lr, 1e-9, 1e3, example=0.05)
        number("margin", self.margin, 0.0, 2.0, example=0.02)


@dataclasses.dataclass(frozen=True)
class HDCConfig(_Retraining, _HDCOptions):
    """Encoder, model, learner and hardware choices of an HDC classifier.

    Args:
        encoder: ``"projection"`` (random bipolar projection) or ``"idlevel"``
            (record-based ID-level encoding).
        model: ``"bsc"`` (binary class vectors, packed XOR + popcount inference) or
            ``"map"`` (bipolar queries, float32 class vectors, cosine similarity).
        learner: ``"centroid"``, ``"adapthd"`` or ``"onlinehd"`` (see :mod:`.learners`).
        dimensions: hypervector length ``D`` (>= 1).
        pad: for ``model="bsc"``, zero-pad the last 64-bit word when ``D`` is not a
            multiple of 64 (exact: padded bits are 0 in every vector). With
            ``pad=False`` such a ``D`` is an error.
        epochs, lr, margin, batch_size: retraining budget (ignored by ``"centroid"``;
            ``margin`` only by ``"adapthd"``).
        levels: ID-level encoder: number of level hypervectors (input levels), >= 2.
        input_bits: projection encoder: bits of the quantized inputs (1..8).
        receptive_field: projection encoder: side of each dimension's square input
            patch (images only); 0 = every input feeds every dimension.
        activation: projection encoder: ``"periodic"`` (binary random-Fourier code) or
            ``"sign"`` (threshold at the training mean).
        period_bits: periodic activation: the accumulator bit that is output; ``None``
            chooses it from the training data.
    """

    levels: int = 16
    input_bits: int = 8
    receptive_field: int = 10
    activation: str = "periodic"
    period_bits: int | None = None

    def __post_init__(self) -> None:
        self._check_options(ENCODERS, LEARNERS)
        choice("activation", self.activation, ACTIVATIONS)
        if isinstance(self.dimensions, bool) or not isinstance(self.dimensions, int) or self.dimensions < 1:
            raise ConfigError(f"dimensions={self.dimensions!r} must be a positive integer "
                              "(the hypervector length D)", "e.g. dimensions=10_000")
        if self.model == "bsc":
            check_packable(self.dimensions, self.pad)
        self._check_retraining()
        if isinstance(self.levels, int) and not isinstance(self.levels, bool) and self.levels < 2:
            raise ConfigError(f"levels={self.levels} must be >= 2: one level hypervector cannot "
                              "tell two input values apart", "e.g. levels=16")
        integer("levels", self.levels, 2, 1024, example=16)
        integer("input_bits", self.input_bits, 1, 8, example=8)
        integer("receptive_field", self.receptive_field, 0, example=10)
        optional(integer, "period_bits", self.period_bits, 0, 24, example=11)
        if self.encoder == "idlevel" and self.receptive_field:
            raise ConfigError("receptive_field applies to the projection encoder only",
                              "set receptive_field=0 with encoder='idlevel'")


class HDCSimulator(Simulator):
    """An HDC classifier on a binary or bipolar hypervector datapath."""

    paradigm = "hdc"
    Config = HDCConfig
    quick: ClassVar[dict] = {"dimensions": 1024, "epochs": 3, "receptive_field": 0}

    def __init__(self, config: HDCConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.encoder: ProjectionEncoder | IDLevelEncoder | None = None
        self.weights: torch.Tensor | None = None  # (C, D) float32 accumulators
        self.class_bits: torch.Tensor | None = None  # (C, D) bool, BSC
        self.class_words: np.ndarray | None = None  # (C, W) uint64, BSC
        self.class_unit: torch.Tensor | None = None  # (C, D) float32, MAP
        self.tiebreak: torch.Tensor | None = None  # (D,) bool, breaks ties of W == 0
        self._encoder_seed: int | None = None
        # Optional, set by the caller: a dict shared by simulators that differ only in
        # learner or model, so a sweep encodes each training set once (no global state).
        self.encoding_cache: dict | None = None

    # -- declarations ------------------------------------------------------------------
    @property
    def encoder_type(self) -> type[ProjectionEncoder] | type[IDLevelEncoder]:
        """The encoder's class, by the config's ``encoder`` (fixed by the registered classes)."""
        return ENCODER_TYPES[self.config.encoder]

    @property
    def op_kinds(self) -> frozenset[str]:
        c = self.config
        kinds = {"sram_byte", "hv_read_bit", "host_transfer_byte"}
        if self.input_levels < HOST_LEVELS:
            kinds.add("cmp_int8")  # requantizing the host's 8-bit codes
        kinds |= self.encoder_type.config_op_kinds(c)
        if c.model == "bsc":
            kinds |= {"xor_bit", "popcount_bit", "cmp_int32"}
        else:
            kinds |= {"add_fp32", "cmp_fp32"}
        return frozenset(kinds)

    @property
    def precision(self) -> str:
        """``binary`` for the packed BSC datapath; ``fp32`` for MAP's float class vectors."""
        return "binary" if self.config.model == "bsc" else "fp32"

    @property
    def input_levels(self) -> int:
        """Levels the encoder resolves each input into."""
        return self.encoder_type.config_input_levels(self.config)

    @property
    def capabilities(self) -> Capabilities:
        kinds, max_f = self.encoder_type.config_capabilities(self.config)
        return Capabilities(input_kinds=kinds, max_features=max_f)

    @property
    def n_params(self) -> int:
        return int(self.weights.numel()) if self.weights is not None else 0

    def check_task(self, task: Task) -> None:
        super().check_task(task)
        rf = self.encoder_type.config_receptive_field(self.config)
        if rf and rf > min(task.input_shape):
            raise IncompatibleError(f"receptive_field={rf} exceeds the {task.input_shape} inputs "
                                    f"of task {task.name!r}",
                                    f"set receptive_field <= {min(task.input_shape)}, or 0")

    @property
    def memory_per_class_bytes(self) -> dict[str, int]:
        """Bytes per class vector: packed, as bool (torchhd BSC) and as float32."""
        return memory_bytes(self.config.dimensions)

    # -- training ----------------------------------------------------------------------
    def _quantize(self, x: np.ndarray) -> torch.Tensor:
        return quantize(x, self.input_levels)

    def _encoding_key(self, task: Task, seed: int) -> tuple:
        c = self.config
        fields = ("encoder", "dimensions", "levels", "input_bits", "receptive_field",
                  "activation", "period_bits")
        return (task.fingerprint, seed) + tuple(getattr(c, f) for f in fields)

    def _fit_encoder(self, task: Task, seed: int) -> torch.Tensor:
        """Build and fit the encoder; return the encoded training set ``(N, D)`` bool."""
        key = self._encoding_key(task, seed)
        if self.encoding_cache is not None and key in self.encoding_cache:
            self.encoder, bits = self.encoding_cache[key]
            return bits
        self.encoder = self._new_encoder(task, seed)
        xq = self._quantize(task.x_train)
        self.encoder.fit(xq)
        bits = self.encoder.encode(xq)
        if self.encoding_cache is not None:
            self.encoding_cache[key] = (self.encoder, bits)
        return bits

    def _new_encoder(self, task: Task, seed: int, period_bits: int | None = None):
        """The seeded encoder for ``task`` (not yet fitted to data)."""
        return self.encoder_type.from_config(self.config, task, seed, period_bits)

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        c = self.config
        self._encoder_seed = seed
        bits = self._fit_encoder(task, seed)
        y = torch.as_tensor(task.y_train, dtype=torch.int64)
        self.tiebreak = torch.rand(c.dimensions, generator=torch.Generator().manual_seed(seed + 1)) < 0.5
        self.weights = train_class_vectors(
            bits, y, task.n_classes, model=c.model, learner=c.learner, epochs=c.epochs, lr=c.lr,
            margin=c.margin, batch_size=c.batch_size, tiebreak=self.tiebreak, seed=seed,
            progress=progress, label=f"{self.name} {c.learner}")
        self._set_class_vectors()

    def _set_class_vectors(self) -> None:
        """What inference compares with, derived from the accumulators ``self.weights``."""
        if self.config.model == "bsc":
            self.class_bits = binarize(self.weights, self.tiebreak)
            self.class_words = pack_bits(self.class_bits, pad=self.config.pad)
        else:
            self.class_unit = normalize(self.weights)

    # -- trained state, for re-counting without retraining ------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Class accumulators, tie-break vector, the encoder's fitted constants, and the seed
        and a SHA-256 digest of its random item memory (regenerated from the seed on load,
        rather than stored: an ID-level item memory at D = 10,000 is ~1 MB)."""
        if self.weights is None:
            raise ConfigError(f"{self.name} has no trained state: it has not been fitted",
                              "call fit(task) first")
        enc = self.encoder
        out = {"weights": self.weights.contiguous(), "tiebreak": self.tiebreak.contiguous(),
               "encoder.seed": torch.tensor(self._encoder_seed, dtype=torch.int64),
               "encoder.sha256": enc.fingerprint()}
        if isinstance(enc, ProjectionEncoder):
            k = -1 if enc.period_bits is None else enc.period_bits
            out["encoder.period_bits"] = torch.tensor(k, dtype=torch.int64)
            if enc.threshold is not None:
                out["encoder.threshold"] = enc.threshold.contiguous()
        return out

    def _class_vectors_of(self, tensors: dict[str, torch.Tensor], task: Task,
                          required: frozenset[str] = frozenset()) -> torch.Tensor:
        """The class accumulators of a saved state, checked: the state holds ``weights``,
        ``tiebreak`` and ``required``, and its class vectors fit this config and ``task``."""
        c = self.config
        missing = sorted({"weights", "tiebreak", *required} - set(tensors))
        if missing:
            raise ConfigError(f"{self.name} state is missing tensors {missing}",
                              "pass what state_tensors() returned for this simulator")
        weights = torch.as_tensor(tensors["weights"]).to(torch.float32)
        if tuple(weights.shape) != (task.n_classes, c.dimensions):
            raise IncompatibleError(
                f"{self.name} state holds class vectors of shape {tuple(weights.shape)}; this config "
                f"and task {task.name!r} need ({task.n_classes}, {c.dimensions})",
                "load the state with the config and task it was fitted with")
        return weights

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor], task: Task) -> None:
        weights = self._class_vectors_of(tensors, task, frozenset({"encoder.seed", "encoder.sha256"}))
        seed = int(tensors["encoder.seed"])
        period = int(tensors.get("encoder.period_bits", torch.tensor(-1)))
        enc = self._new_encoder(task, seed, period_bits=None if period < 0 else period)
        if "encoder.threshold" in tensors:
            enc.threshold = torch.as_tensor(tensors["encoder.threshold"]).to(torch.int64)
        if not torch.equal(enc.fingerprint(), torch.as_tensor(tensors["encoder.sha256"])):
            raise NonvonError(
                f"{self.name}: the item memory regenerated from seed {seed} differs from the trained "
                "one (a torch or torchhd version that draws random numbers differently)",
                "retrain the cell with fit(task); its stored state cannot be re-counted here")
        self.encoder, self._encoder_seed = enc, seed
        self.weights = weights
        self.tiebreak = torch.as_tensor(tensors["tiebreak"]).to(torch.bool)
        self._set_class_vectors()

    def resident_bytes(self) -> int:
        """Bytes held on chip for inference: the encoder's item memory and constants, and the
        class vectors (packed 64-bit words for BSC, float32 for MAP)."""
        c = self.config
        n_classes = len(self.weights)
        per_class = memory_bytes(c.dimensions)["packed_uint64" if c.model == "bsc" else "float32"]
        return self.encoder.resident_bytes() + n_classes * per_class

    def _count_io(self, n: int, n_features: int, n_classes: int, counts: Counter) -> None:
        """Host transfer of the inputs and the class index, and their requantization."""
        levels = self.input_levels
        per_feature = 1 if levels <= HOST_LEVELS else 2
        class_bytes = max(1, -(-math.ceil(math.log2(n_classes)) // 8))
        counts["host_transfer_byte"] += n * (n_features * per_feature + class_bytes)
        counts["sram_byte"] += n * n_features * per_feature  # the input buffer, read by the encoder
        if levels < HOST_LEVELS:
            counts["cmp_int8"] += n * n_features * math.ceil(math.log2(levels))

    # -- inference ---------------------------------------------------------------------
    def encode(self, x: np.ndarray) -> torch.Tensor:
        """``(N, ...)`` inputs in [0, 1] -> ``(N, D)`` bool query hypervectors."""
        return self.encoder.encode(self._quantize(x))

    def _predict(self, x: np.ndarray) -> Prediction:
        c = self.config
        xq = self._quantize(x)
        counts: Counter[str] = Counter()
        n, n_classes = len(xq), len(self.weights)
        self._count_io(n, xq.shape[1], n_classes, counts)
        self.encoder.count(xq, counts)
        bits = self.encoder.encode(xq)
        if c.model == "bsc":
            dist = hamming_packed(pack_bits(bits, pad=c.pad), self.class_words)
            labels = dist.argmin(1)
            word_bits = n_words(c.dimensions) * WORD_BITS
            counts["xor_bit"] += n * n_classes * word_bits
            counts["popcount_bit"] += n * n_classes * word_bits
            counts["hv_read_bit"] += n * n_classes * word_bits
            counts["cmp_int32"] += n * (n_classes - 1)
        else:
            labels = (bipolar(bits) @ self.class_unit.T).argmax(1).numpy()
            counts["add_fp32"] += n * n_classes * c.dimensions
            counts["sram_byte"] += n * n_classes * c.dimensions * 4
            counts["cmp_fp32"] += n * (n_classes - 1)
        resident = self.resident_bytes()
        return Prediction(np.asarray(labels, dtype=np.int64),
                          OpLedger(counts, n_inferences=n, resident_bytes=resident),
                          metrics={"footprint_bytes": float(resident)})

    def predict_unpacked(self, x: np.ndarray) -> np.ndarray:
        """Labels from torchhd's own unpacked path on the same hypervectors.

        BSC: ``torchhd.hamming_similarity`` between ``BSCTensor`` queries and class
        vectors (one bool per bit), arg-max. MAP: ``torchhd.cos`` with the class
        accumulators, arg-max.
        """
        import torchhd

        bits = self.encode(x)
        if self.config.model == "bsc":
            q = bits.as_subclass(torchhd.BSCTensor)
            cls = self.class_bits.as_subclass(torchhd.BSCTensor)
            return torchhd.hamming_similarity(q, cls).argmax(-1).numpy()
        q = bipolar(bits).as_subclass(torchhd.MAPTensor)
        return torchhd.cos(q, self.weights.as_subclass(torchhd.MAPTensor)).argmax(-1).numpy()


class HDCProjection(HDCSimulator):
    """HDC with the random-projection encoder (periodic code, 10x10 receptive fields)."""

    cost_hint = 47.0

    fixed: ClassVar[tuple[str, ...]] = ("encoder",)
    defaults: ClassVar[dict] = {"encoder": "projection"}


class HDCIDLevel(HDCSimulator):
    """HDC with the ID-level (record-based) encoder, 16 levels."""

    cost_hint = 80.0

    fixed: ClassVar[tuple[str, ...]] = ("encoder",)
    # ID-level codes share a large common part (every background pixel binds the same
    # level-0 vector), so class similarities differ by little: a smaller step and
    # margin than the projection's (tuned on mnist-5k: docs/results/hdc-sweep/README.md)
    defaults: ClassVar[dict] = {"encoder": "idlevel", "receptive_field": 0, "lr": 0.01,
                                "margin": 0.005}


# -- low dimension (issue #24) -----------------------------------------------------------------

LOWDIM_ENCODERS = ("learned", "designed")
# "joint": the binary class vectors trained with the encoder; the others retrain them on the
# encoded training set (see :mod:`.learners`)
LOWDIM_LEARNERS = ("joint",) + LEARNERS


@dataclasses.dataclass(frozen=True)
class _LowDimEncoding(_HDCOptions):
    """:class:`LowDimConfig`'s own options after the shared ones (see there)."""

    encoder: str = "learned"
    learner: str = "joint"
    dimensions: int = 64
    layers: int = 2
    weight_bits: int = 4
    input_threshold: float = 0.2
    encoder_epochs: int = 30
    encoder_lr: float = 0.01
    encoder_batch_size: int = 128
    encoder_samples: int | None = None
    levels: int = 4


@dataclasses.dataclass(frozen=True)
class LowDimConfig(_Retraining, _LowDimEncoding):
    """A low-dimensional HDC classifier with an encoder trained on the task.

    Args:
        encoder: ``"learned"``: integer-weight threshold layers trained end to end
            (:class:`~nonvon.simulators.hdc.lowdim.LearnedEncoder`, after Yan et al.,
            ECML-PKDD 2023); ``"designed"``: the record-based ID-level encoding with its key
            and level hypervectors optimized on the task
            (:class:`~nonvon.simulators.hdc.design.DesignedIDLevelEncoder`, in the spirit of
            Basaklar et al., tinyML 2021; see that module for what follows the paper).
        model: ``"bsc"`` (packed XOR + popcount search) or ``"map"`` (float class vectors).
        learner: ``"joint"`` (class vectors trained with the encoder, binarized) or one of
            ``"centroid"``, ``"adapthd"``, ``"onlinehd"`` on the encoded training set.
        dimensions: hypervector length ``D``, 1 .. the packing limit.
        pad: zero-pad the last 64-bit word when ``D`` is not a multiple of 64.
        layers: learned encoder: 1 or 2 layers (EffHDC's MNIST models have both; 91.12% at
            D = 64 is their two-layer model).
        weight_bits: learned encoder: bits per weight, 1 (signs) .. 8.
        input_threshold: learned encoder: an input feature in [0, 1] is the bit
            ``x >= input_threshold`` (EffHDC's MNIST code binarizes pixels at 0.2).
        encoder_epochs, encoder_lr, encoder_batch_size: encoder training or design (Adam,
            cosine learning-rate decay; the learned encoder normalizes each batch).
        encoder_samples: training samples the encoder is trained on (a seeded subset);
            ``None`` = all of them.
        epochs, lr, margin, batch_size: class-vector retraining of the non-joint learners.
        levels: designed encoder: input quantization levels, one level hypervector each
            (2 .. 256).
    """

    def __post_init__(self) -> None:
        self._check_options(LOWDIM_ENCODERS, LOWDIM_LEARNERS)
        integer("levels", self.levels, 2, HOST_LEVELS, example=4)
        # packing applies to binary class vectors; D's bounds (>= 1, <= MAX_DIMENSIONS) to both
        check_packable(self.dimensions, self.pad or self.model != "bsc")
        integer("layers", self.layers, 1, 2, example=2)
        integer("weight_bits", self.weight_bits, 1, 8, example=4)
        fraction("input_threshold", self.input_threshold, example=0.2)
        positive_int("encoder_epochs", self.encoder_epochs, example=10)
        number("encoder_lr", self.encoder_lr, 1e-9, 10.0, example=0.01)
        integer("encoder_batch_size", self.encoder_batch_size, 2, example=128)
        optional(integer, "encoder_samples", self.encoder_samples, 2, example=10_000)
        self._check_retraining()
        q = max(1, 2 ** (self.weight_bits - 1) - 1)
        if self.encoder == "learned" and self.layers == 2 and self.dimensions * q > MAX_SUM:
            raise ConfigError(
                f"dimensions={self.dimensions} with weight_bits={self.weight_bits}: the second layer's "
                f"integer sums (up to {self.dimensions * q:,}) would not be exact in float32",
                f"use dimensions <= {MAX_SUM // q:,}, fewer weight_bits, or layers=1")


class HDCLowDim(HDCSimulator):
    """Binary HDC at tens of dimensions: an encoder fitted to the task, packed Hamming search.

    The encoder is fitted to the labelled training set: trained integer threshold layers
    (``encoder="learned"``, :mod:`.lowdim`; integer adds and compares) or an ID-level item
    memory designed on the task (``encoder="designed"``, :mod:`.design`; the XOR, popcount
    and compare operations of :class:`HDCIDLevel`). Inference is the same packed
    XOR + popcount search as :class:`HDCProjection`.
    """

    cost_hint = 50.0

    Config = LowDimConfig
    quick: ClassVar[dict] = {"dimensions": 64, "encoder_epochs": 3, "encoder_batch_size": 64}

    @property
    def op_kinds(self) -> frozenset[str]:
        kinds = {"sram_byte", "hv_read_bit", "host_transfer_byte", "cmp_int32"}
        if self.input_levels < HOST_LEVELS:
            kinds.add("cmp_int8")  # requantizing the host's 8-bit codes
        if self.config.encoder == "designed":
            kinds |= IDLevelEncoder.config_op_kinds(self.config)
        else:
            kinds.add("add_int32")
        if self.config.model == "bsc":
            kinds |= {"xor_bit", "popcount_bit"}
        else:
            kinds |= {"add_fp32", "cmp_fp32"}
        return frozenset(kinds)

    @property
    def input_levels(self) -> int:
        if self.config.encoder == "designed":
            return self.config.levels
        return 2  # one compare of the host's 8-bit code with the threshold per feature

    @property
    def capabilities(self) -> Capabilities:
        if self.config.encoder == "designed":
            return Capabilities(input_kinds=("image", "vector"), max_features=None)
        q = max(1, 2 ** (self.config.weight_bits - 1) - 1)
        return Capabilities(input_kinds=("image", "vector"), max_features=MAX_SUM // q)

    def _encoder_samples(self, task: Task) -> int:
        n = self.config.encoder_samples
        return len(task.y_train) if n is None else n

    def check_task(self, task: Task) -> None:
        super(HDCSimulator, self).check_task(task)
        c, n_train = self.config, len(task.y_train)
        # Incompatible (not a bad config): the same options fit a larger task, and
        # `compare --sim all` lists the pair under "Not run" instead of failing.
        if c.encoder_samples is not None and c.encoder_samples > n_train:
            raise IncompatibleError(
                f"encoder_samples={c.encoder_samples} exceeds the {n_train} training samples of task "
                f"{task.name!r}", f"use encoder_samples <= {n_train}, or None for all of them")
        if c.encoder_batch_size > self._encoder_samples(task):
            raise IncompatibleError(
                f"encoder_batch_size={c.encoder_batch_size} exceeds the {self._encoder_samples(task)} "
                f"samples the encoder of task {task.name!r} is trained on (batch normalization "
                "needs full batches)",
                f"use encoder_batch_size <= {self._encoder_samples(task)}")

    def _quantize(self, x: np.ndarray) -> torch.Tensor:
        if self.config.encoder == "designed":
            return quantize(x, self.config.levels)
        return binarize_inputs(x, self.config.input_threshold)

    def _new_encoder(self, task: Task, seed: int, period_bits=None):
        c = self.config
        if c.encoder == "designed":
            return DesignedIDLevelEncoder(task.n_features, c.dimensions, levels=c.levels, seed=seed)
        return LearnedEncoder(task.n_features, c.dimensions, layers=c.layers, weight_bits=c.weight_bits)

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        c = self.config
        self._encoder_seed = seed
        xq = self._quantize(task.x_train)
        y = torch.as_tensor(task.y_train, dtype=torch.int64)
        idx = torch.arange(len(y))
        if c.encoder_samples is not None and c.encoder_samples < len(y):
            gen = torch.Generator().manual_seed(seed + 2)
            idx = torch.randperm(len(y), generator=gen)[:c.encoder_samples]
        enc = self._new_encoder(task, seed)
        fit = enc.fit_design if c.encoder == "designed" else enc.fit
        self.encoder = fit(xq[idx], y[idx], task.n_classes, epochs=c.encoder_epochs, lr=c.encoder_lr,
                           batch_size=c.encoder_batch_size, seed=seed)
        self.tiebreak = torch.rand(c.dimensions, generator=torch.Generator().manual_seed(seed + 1)) < 0.5
        if c.learner == "joint":
            self.weights = bipolar(self.encoder.head_bits)
        else:
            self.weights = train_class_vectors(
                self.encoder.encode(xq), y, task.n_classes, model=c.model, learner=c.learner,
                epochs=c.epochs, lr=c.lr, margin=c.margin, batch_size=c.batch_size,
                tiebreak=self.tiebreak, seed=seed, progress=progress, label=f"{self.name} {c.learner}")
        self._set_class_vectors()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Class accumulators, tie-break vector and the encoder's fitted state: integer weights and
        thresholds, or the designed item memory (stored: they are trained, not regenerated)."""
        if self.weights is None:
            raise ConfigError(f"{self.name} has no trained state: it has not been fitted",
                              "call fit(task) first")
        return {"weights": self.weights.contiguous(), "tiebreak": self.tiebreak.contiguous(),
                **self.encoder.state()}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor], task: Task) -> None:
        weights = self._class_vectors_of(tensors, task)
        enc = self._new_encoder(task, 0)
        enc.load_state(tensors)
        self.encoder, self.weights = enc, weights
        self.tiebreak = torch.as_tensor(tensors["tiebreak"]).to(torch.bool)
        self._set_class_vectors()
