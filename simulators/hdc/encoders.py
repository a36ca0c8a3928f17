"""Encoders: quantized inputs -> binary hypervectors, with the operations they execute.

Both encoders take inputs already quantized to integers (the sensor's ADC, outside the
device) and return a ``(N, D)`` boolean tensor: the bits of a BSC hypervector, or the
signs of a bipolar MAP one (bit 1 = +1). Their random item memories come from
``torchhd.embeddings`` and are drawn from a seeded generator.

* :class:`ProjectionEncoder`, random projection. Each dimension ``d`` accumulates the
  integer inputs with random signs, ``acc_d = sum_j phi_jd x_j`` with
  ``phi = torchhd.embeddings.Random(F, D, "MAP")`` (a random bipolar hypervector per
  input feature), optionally restricted to a random square receptive field per
  dimension (random local receptive fields as in McDonnell & Vladusich, IJCNN 2015).
  The bit is either

  - ``"periodic"``: bit ``k`` of ``acc_d + o_d`` (``o_d`` a random integer offset), i.e.
    ``sign(cos(pi acc_d / 2**k + phase_d))``, the binary random-Fourier code of
    Raginsky & Lazebnik (NIPS 2009, "Locality-sensitive binary codes from shift-invariant
    kernels"); in hardware one add and a wire to bit ``k``; or
  - ``"sign"``: ``acc_d > theta_d`` with ``theta_d`` the training mean, the classic
    sign random projection.

  Executed per sample (the input buffer's reads are counted by the simulator): one
  ``add_int32`` per non-zero input and connected dimension (zero inputs are skipped, as a
  sparse-input datapath does), one sign bit of ``phi`` read per such add, then one
  ``add_int32`` (periodic) or ``cmp_int32`` (sign) per dimension and the offset or
  threshold read.

* :class:`IDLevelEncoder`, ID-level (record-based) encoding as in torchhd's ``Vanilla``
  classifier: ``majority_j(ID_j XOR L[q(x_j)])`` with ``ID = torchhd.embeddings.Random``
  and ``L = torchhd.embeddings.Level``, plus one fixed random tie-break hypervector in
  the bundle so the count is odd and the majority is deterministic. Executed per
  sample: ``F * D`` XOR bits (binding), ``(F + 1) * D`` bits into per-dimension
  population counts (bundling), ``D`` compares with the majority threshold, and
  ``2 F D + D`` item-memory bits read (key, level and tie-break hypervectors).

Resident memory (:meth:`ProjectionEncoder.resident_bytes`, :meth:`IDLevelEncoder.resident_bytes`):
what the encoder's counted reads hold on chip, at stored precision -- the projection's sign
bits (only the patch's signs and the patch origin per dimension with receptive fields) and
its int16 offsets or int32 thresholds; the ID-level key, level and tie-break hypervectors.

The input quantization and host transfer are counted by the simulator
(:class:`~nonvon.simulators.hdc.simulator.HDCSimulator`); the accumulator registers inside
the datapath are not counted.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
import torch

from nonvon.errors import ConfigError

__all__ = ["ProjectionEncoder", "IDLevelEncoder", "quantize"]

# Half-period of the periodic code relative to the spread of the accumulators over the
# training set: ~2.2-2.4 gave the best validation accuracy on MNIST with and without
# receptive fields (our tuning); the fitted period is rounded to a power of two.
_PERIOD_PER_STD = 2.3
_BATCH = 2048


def quantize(x: np.ndarray, levels: int) -> torch.Tensor:
    """Inputs in [0, 1] -> integers ``0 .. levels - 1`` (round to nearest, clipped).

    The same rule as ``torchhd.functional.value_to_index(x, 0, 1, levels)`` followed by
    a clamp, which is what ``torchhd.embeddings.Level`` does.
    """
    t = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
    return torch.round(t * (levels - 1)).clamp_(0, levels - 1).to(torch.int64)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _digest(*tensors: torch.Tensor) -> torch.Tensor:
    """SHA-256 of the tensors' bytes, as 32 uint8: a restored encoder is checked against it."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return torch.frombuffer(bytearray(h.digest()), dtype=torch.uint8).clone()


def _bits_to_bytes(bits: int) -> int:
    return -(-bits // 8)


class ProjectionEncoder:
    """Random bipolar projection, optionally local, with a periodic or sign output bit.

    Args:
        n_features: input length ``F``.
        dimensions: hypervector length ``D``.
        image_shape: ``(H, W)`` when ``receptive_field`` is used.
        receptive_field: side of each dimension's square input patch; 0 = all inputs.
        activation: ``"periodic"`` or ``"sign"``.
        period_bits: bit ``k`` selected by the periodic code; ``None`` = chosen in
            :meth:`fit` from the training accumulators.
        input_levels: number of input quantization levels (``2**input_bits``).
        seed: seeds the item memory, the receptive fields and the offsets.
    """

    def __init__(self, n_features: int, dimensions: int, *, image_shape=None,
                 receptive_field: int = 0, activation: str = "periodic",
                 period_bits: int | None = None, input_levels: int = 256, seed: int = 0):
        import torchhd  # imported where used: the packed kernels need only torch and NumPy

        g = _generator(seed)
        self.n_features, self.dimensions = n_features, dimensions
        self.activation, self.input_levels = activation, input_levels
        self.receptive_field, self.image_shape = receptive_field, image_shape
        phi = torchhd.embeddings.Random(n_features, dimensions, "MAP", generator=g).weight
        phi = phi.detach().as_subclass(torch.Tensor).to(torch.float32)
        if receptive_field:
            h, w = image_shape
            if receptive_field > min(h, w):
                raise ConfigError(f"receptive_field={receptive_field} exceeds the {h}x{w} input",
                                  f"use receptive_field <= {min(h, w)}, or 0 for the whole input")
            r0 = torch.randint(0, h - receptive_field + 1, (dimensions,), generator=g)
            c0 = torch.randint(0, w - receptive_field + 1, (dimensions,), generator=g)
            rows = torch.arange(h).view(h, 1, 1)
            cols = torch.arange(w).view(1, w, 1)
            mask = ((rows >= r0) & (rows < r0 + receptive_field)
                    & (cols >= c0) & (cols < c0 + receptive_field)).reshape(h * w, dimensions)
            phi = phi * mask
        self.phi = phi.contiguous()  # (F, D) in {-1, 0, +1}
        self.fanout = (phi != 0).sum(1).to(torch.int64)  # dimensions each input feeds
        self._offset_u = torch.rand(dimensions, generator=g, dtype=torch.float64)
        self.period_bits = period_bits
        self.offset: torch.Tensor | None = None
        self.threshold: torch.Tensor | None = None
        if period_bits is not None:
            self._set_period(period_bits)

    # -- what a config with this encoder declares (HDCSimulator asks the encoder's class) --
    @staticmethod
    def from_config(c, task, seed: int, period_bits: int | None = None) -> ProjectionEncoder:
        """The seeded encoder of an :class:`~.simulator.HDCConfig` for ``task`` (not fitted)."""
        return ProjectionEncoder(
            task.n_features, c.dimensions, image_shape=task.input_shape[:2] if task.is_image else None,
            receptive_field=c.receptive_field, activation=c.activation,
            period_bits=c.period_bits if period_bits is None else period_bits,
            input_levels=2 ** c.input_bits, seed=seed)

    @staticmethod
    def config_op_kinds(c) -> set[str]:
        return {"add_int32"} | ({"cmp_int32"} if c.activation == "sign" else set())

    @staticmethod
    def config_input_levels(c) -> int:
        return 2 ** c.input_bits

    @staticmethod
    def config_capabilities(c) -> tuple[tuple[str, ...], int | None]:
        """Input kinds and the most input features."""
        kinds = ("image",) if c.receptive_field else ("image", "vector")
        # the projection's integer sums must stay exact in float32: F * (2**bits - 1) < 2**24
        return kinds, (2 ** 24 - 1) // (2 ** c.input_bits - 1)

    @staticmethod
    def config_receptive_field(c) -> int:
        return c.receptive_field

    def _set_period(self, k: int) -> None:
        self.period_bits = int(k)
        self.offset = torch.floor(self._offset_u * 2 ** (k + 1)).to(torch.int64)

    def accumulate(self, xq: torch.Tensor) -> torch.Tensor:
        """Integer accumulators ``(N, D)``; exact, since ``|acc| < 2**24`` in float32."""
        if self.n_features * (self.input_levels - 1) >= 2 ** 24:
            raise ConfigError("inputs too long or too finely quantized for exact float32 sums",
                              "lower input_bits or the number of features")
        return (xq.to(torch.float32) @ self.phi).round_().to(torch.int64)

    def fit(self, xq: torch.Tensor) -> ProjectionEncoder:
        """Choose the data-dependent constants (threshold or period) on training inputs."""
        sample = xq[:4096]
        acc = self.accumulate(sample).to(torch.float64)
        if self.activation == "sign":
            self.threshold = torch.floor(acc.mean(0)).to(torch.int64)
        elif self.period_bits is None:
            spread = float(acc.std(0).mean()) if len(sample) > 1 else 1.0
            self._set_period(max(0, round(math.log2(max(spread * _PERIOD_PER_STD, 1.0)))))
        return self

    def bits(self, acc: torch.Tensor) -> torch.Tensor:
        if self.activation == "sign":
            return acc > self.threshold
        return ((acc + self.offset) >> self.period_bits) & 1 == 1

    def encode(self, xq: torch.Tensor) -> torch.Tensor:
        """``(N, F)`` quantized inputs -> ``(N, D)`` bool hypervectors."""
        out = torch.empty((len(xq), self.dimensions), dtype=torch.bool)
        for i in range(0, len(xq), _BATCH):
            out[i:i + _BATCH] = self.bits(self.accumulate(xq[i:i + _BATCH]))
        return out

    def resident_bytes(self) -> int:
        """Bytes the encoder keeps on chip: sign bits of the projection and the per-dimension
        offsets (int16) or thresholds (int32) that :meth:`count` reads."""
        d, rf = self.dimensions, self.receptive_field
        if rf:
            # a dimension stores only its rf x rf patch's signs, and where the patch starts
            side = max(self.image_shape)
            origin_bytes = 2 * _bits_to_bytes(max(1, math.ceil(math.log2(side))))
            signs = _bits_to_bytes(d * rf * rf) + d * origin_bytes
        else:
            signs = _bits_to_bytes(self.n_features * d)
        return signs + d * (4 if self.activation == "sign" else 2)

    def fingerprint(self) -> torch.Tensor:
        """Digest of the seeded random draws (item memory, receptive fields, offsets)."""
        return _digest(self.phi, self._offset_u)

    def count(self, xq: torch.Tensor, counts: Counter) -> None:
        """Add the operations that encoding ``xq`` executes to ``counts``."""
        n, d = len(xq), self.dimensions
        adds = int(((xq != 0).to(torch.int64) @ self.fanout).sum())  # non-zero input x fan-out
        counts["add_int32"] += adds
        counts["hv_read_bit"] += adds  # one sign bit of phi per executed add
        if self.activation == "sign":
            counts["cmp_int32"] += n * d
            counts["sram_byte"] += n * d * 4  # int32 thresholds
        else:
            counts["add_int32"] += n * d
            counts["sram_byte"] += n * d * 2  # offsets < 2**(k+1) <= 2**16, stored as int16


class IDLevelEncoder:
    """ID-level (record-based) encoding: ``majority_j(ID_j XOR L[q(x_j)])``.

    Args:
        n_features: input length ``F``.
        dimensions: hypervector length ``D``.
        levels: number of level hypervectors (input quantization levels), >= 2.
        seed: seeds the key, level and tie-break hypervectors.
    """

    def __init__(self, n_features: int, dimensions: int, *, levels: int = 16, seed: int = 0):
        import torchhd

        g = _generator(seed)
        self.n_features, self.dimensions, self.levels = n_features, dimensions, levels
        self.keys = torchhd.embeddings.Random(n_features, dimensions, "BSC", generator=g)
        self.level_hvs = torchhd.embeddings.Level(levels, dimensions, "BSC", low=0.0, high=1.0,
                                                  generator=g)
        self.tiebreak = torchhd.functional.random(1, dimensions, "BSC", generator=g)[0]
        self._keys = self.keys.weight.detach().as_subclass(torch.Tensor).to(torch.uint8)
        self._lv = self.level_hvs.weight.detach().as_subclass(torch.Tensor).to(torch.uint8)
        self._tb = self.tiebreak.as_subclass(torch.Tensor).to(torch.int32)
        self._build_groups()

    def _build_groups(self) -> None:
        """Group the dimensions by their level-bit pattern, for :meth:`encode`."""
        self._key_sum = self._keys.to(torch.int32).sum(0)
        patterns, inverse = torch.unique(self._lv.T, dim=0, return_inverse=True)
        keys_f = self._keys.to(torch.float32)
        self._groups = []
        for u, pattern in enumerate(patterns):
            dims = torch.nonzero(inverse == u).flatten()
            self._groups.append((pattern.to(torch.float32), dims, keys_f[:, dims].contiguous()))

    @staticmethod
    def from_config(c, task, seed: int, period_bits: int | None = None) -> IDLevelEncoder:
        return IDLevelEncoder(task.n_features, c.dimensions, levels=c.levels, seed=seed)

    @staticmethod
    def config_op_kinds(c) -> set[str]:
        return {"xor_bit", "popcount_bit", "cmp_int32"}

    @staticmethod
    def config_input_levels(c) -> int:
        return c.levels

    @staticmethod
    def config_capabilities(c) -> tuple[tuple[str, ...], int | None]:
        return ("image", "vector"), None

    @staticmethod
    def config_receptive_field(c) -> int:
        return 0  # every input feeds every dimension

    def fit(self, xq: torch.Tensor) -> IDLevelEncoder:
        return self

    def resident_bytes(self) -> int:
        """Bytes of the key, level and tie-break hypervectors (one bit per component)."""
        return _bits_to_bytes((self.n_features + self.levels + 1) * self.dimensions)

    def fingerprint(self) -> torch.Tensor:
        """Digest of the seeded key, level and tie-break hypervectors."""
        return _digest(self._keys, self._lv, self._tb)

    def encode(self, xq: torch.Tensor) -> torch.Tensor:
        """``(N, F)`` level indices -> ``(N, D)`` bool hypervectors (majority of F + 1).

        The count of ones in dimension ``d`` is ``sum_j key_jd XOR lv[q_j]_d``. Dimensions
        whose level bits follow the same pattern over the levels (a Level embedding has
        few distinct patterns) share ``b_j = pattern[q_j]``, and for them the count is
        ``sum_j key_jd + sum_j b_j - 2 sum_j b_j key_jd``: one matmul per pattern group,
        exact in float32 (counts <= F < 2**24).
        """
        out = torch.empty((len(xq), self.dimensions), dtype=torch.bool)
        for i in range(0, len(xq), _BATCH):
            q = xq[i:i + _BATCH]
            ones = self._key_sum.expand(len(q), -1).clone()
            for pattern, dims, keys in self._groups:
                b = pattern[q]  # (n, F) the level bit of every input, for this group
                ones[:, dims] += b.sum(1, keepdim=True).to(torch.int32)
                ones[:, dims] -= 2 * (b @ keys).round().to(torch.int32)
            out[i:i + _BATCH] = ones + self._tb > (self.n_features + 1) // 2
        return out

    def count(self, xq: torch.Tensor, counts: Counter) -> None:
        n, f, d = len(xq), self.n_features, self.dimensions
        counts["xor_bit"] += n * f * d
        counts["popcount_bit"] += n * (f + 1) * d
        counts["cmp_int32"] += n * d
        counts["hv_read_bit"] += n * (2 * f + 1) * d


# The encoder class of each ``encoder`` option value: the one place a config string becomes a type.
ENCODER_TYPES = {"projection": ProjectionEncoder, "idlevel": IDLevelEncoder}
