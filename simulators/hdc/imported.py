"""A torchhd model (encoder + class hypervectors) on the HDC presets, bit-packed where binary.

``nonvon.load_network((encoder, centroid), device="hdc-asic-28nm")`` takes a
``torchhd.embeddings.Projection`` whose weights are bipolar (every entry +-1, e.g.
``encoder.weight.data = torchhd.random(F, D, "MAP")`` or ``encoder.weight.sign()``) and a
trained ``torchhd.models.Centroid``. The query is ``sign(encoder(x))`` (torchhd's
``normalize`` of a MAP vector: +1 where positive, else -1), computed on the host's 8-bit
input codes as an HDC chip receives them
(``x`` rounded to 256 levels), and counted as nonvon's own projection encoder is (one
``add_int32`` and one item-memory bit read per non-zero input and dimension, one
``cmp_int32`` per dimension for the sign).

- ``binary=True`` (the default): the class vectors are binarized (``sign``), packed into
  64-bit words, and the label is the class at the smallest Hamming distance, XOR and
  popcount per word (:mod:`.packing`): counted as ``hdc-projection``'s BSC path.
- ``binary=False``: cosine similarity with the float class vectors, as
  ``Centroid(x, dot=False)``'s arg-max: one ``add_fp32`` per dimension and class (the query
  is +-1) and the class vectors read as fp32 (``sram_byte``).

A float (non-bipolar) projection, ``Sinusoid`` (cos and sin) or another encoder needs
arithmetic the HDC presets do not price; it is refused, naming the encoder and the fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import Counter
from typing import Any

import numpy as np
import torch

from nonvon.config import flag
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.importers import Imported, Importer, resolve_preset
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.simulators.hdc.packing import WORD_BITS, hamming_packed, memory_bytes, n_words, pack_bits
from nonvon.tasks import Task

__all__ = ["ImportedHDC", "ImportedHDCConfig", "import_torchhd", "IMPORTER"]

_LEVELS = 256  # the host's 8-bit input codes


@dataclasses.dataclass(frozen=True)
class ImportedHDCConfig:
    """Args: ``network`` (what was imported, for the record), ``preset``, ``binary`` (packed
    Hamming search on binarized class vectors, or float cosine)."""

    network: str = ""
    preset: str = "hdc-asic-28nm"
    binary: bool = True

    def __post_init__(self) -> None:
        flag("binary", self.binary)


class ImportedHDC(Imported, Simulator):
    """A torchhd projection encoder and centroid classifier on an HDC device."""

    paradigm = "hdc"
    Config = ImportedHDCConfig

    def __init__(self, encoder, centroid, config: ImportedHDCConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.phi = _bipolar_weights(encoder)              # (D, F) in {-1, +1}
        self.weights = centroid.weight.detach().as_subclass(torch.Tensor).float()  # (C, D)
        if self.weights.shape[1] != self.phi.shape[0]:
            raise IncompatibleError(f"the encoder gives {self.phi.shape[0]}-dimensional "
                                    f"hypervectors; the Centroid holds {self.weights.shape[1]}",
                                    "pair the encoder with the classifier trained on its output")
        self.name = "torchhd:Projection+Centroid"

    @property
    def op_kinds(self) -> frozenset[str]:
        kinds = {"add_int32", "cmp_int32", "hv_read_bit", "sram_byte", "host_transfer_byte"}
        return frozenset(kinds | ({"xor_bit", "popcount_bit"} if self.config.binary
                                  else {"add_fp32", "cmp_fp32"}))

    @property
    def precision(self) -> str:
        return "binary" if self.config.binary else "fp32"

    @property
    def n_params(self) -> int:
        return int(self.weights.numel())

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(input_kinds=("image", "vector"), max_features=self.phi.shape[1])

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        if task.n_features != self.phi.shape[1] or task.n_classes != len(self.weights):
            raise IncompatibleError(f"the torchhd model takes {self.phi.shape[1]} features and "
                                    f"{len(self.weights)} classes; task {task.name!r} has "
                                    f"{task.n_features} and {task.n_classes}",
                                    "evaluate on the task the model was trained on")

    def _predict(self, x: np.ndarray) -> Prediction:
        d, f = self.phi.shape
        xq = torch.round(torch.as_tensor(x.reshape(len(x), -1), dtype=torch.float32)
                         * (_LEVELS - 1)).clamp_(0, _LEVELS - 1)
        query = (xq @ self.phi.T) > 0                      # torchhd.normalize (MAP): > 0 is +1
        n, c = len(xq), len(self.weights)
        counts: Counter[str] = Counter()
        counts["host_transfer_byte"] += n * (f + max(1, -(-math.ceil(math.log2(c)) // 8)))
        counts["sram_byte"] += n * f                       # the input buffer, read by the encoder
        adds = int((xq != 0).sum()) * d                    # non-zero input x its D dimensions
        counts["add_int32"] += adds
        counts["hv_read_bit"] += adds                      # one sign bit of phi per executed add
        counts["cmp_int32"] += n * d                       # the sign of each accumulator
        if self.config.binary:
            labels = np.asarray(hamming_packed(pack_bits(query, pad=True),
                                               pack_bits(self.weights > 0, pad=True)).argmin(1))
            bits = n_words(d) * WORD_BITS
            for kind in ("xor_bit", "popcount_bit", "hv_read_bit"):
                counts[kind] += n * c * bits
            counts["cmp_int32"] += n * (c - 1)
            per_class = memory_bytes(d)["packed_uint64"]
        else:
            unit = self.weights / self.weights.norm(dim=1, keepdim=True).clamp_min(1e-12)
            labels = ((query.float() * 2 - 1) @ unit.T).argmax(1).numpy()
            counts["add_fp32"] += n * c * d
            counts["sram_byte"] += n * c * d * 4
            counts["cmp_fp32"] += n * (c - 1)
            per_class = memory_bytes(d)["float32"]
        resident = math.ceil(d * f / 8) + c * per_class   # item memory (one bit each) + classes
        return Prediction(np.asarray(labels, dtype=np.int64),
                          OpLedger(dict(counts), n_inferences=n, resident_bytes=resident),
                          metrics={"footprint_bytes": float(resident)})  # see hdc.simulator

    def predict_torchhd(self, encoder, centroid, x: np.ndarray) -> np.ndarray:
        """torchhd's own labels on the same quantized inputs (for checking): binary, the
        Hamming similarity of the binarized vectors; else ``centroid(query, dot=False)``."""
        import torchhd

        xq = torch.round(torch.as_tensor(x.reshape(len(x), -1), dtype=torch.float32)
                         * (_LEVELS - 1)).clamp_(0, _LEVELS - 1)
        with torch.no_grad():
            q = torchhd.normalize(encoder(xq))  # MAP: +1 where > 0, else -1
            if self.config.binary:
                qb = (q > 0).as_subclass(torchhd.BSCTensor)
                cb = (centroid.weight > 0).as_subclass(torchhd.BSCTensor)
                return torchhd.hamming_similarity(qb, cb).argmax(-1).numpy()
            return centroid(q, dot=False).argmax(-1).numpy()


def _bipolar_weights(encoder) -> torch.Tensor:
    import torchhd

    kind = type(encoder).__name__
    if not isinstance(encoder, torchhd.embeddings.Projection):
        raise IncompatibleError(
            f"torchhd encoder {kind} is not supported: the HDC presets price XOR, popcount and "
            "integer adds, not its arithmetic",
            "use torchhd.embeddings.Projection with bipolar weights (weight = sign(weight)), or "
            "nonvon's own hdc-projection / hdc-idlevel simulators")
    w = encoder.weight.detach().as_subclass(torch.Tensor).float()
    if not bool(((w == 1) | (w == -1)).all()):
        raise IncompatibleError(
            "the torchhd Projection's weights are not bipolar (+-1): a float projection needs "
            "multipliers the HDC presets do not price",
            "set encoder.weight.data = encoder.weight.sign() (or torchhd.random(F, D, 'MAP')) "
            "and retrain the Centroid on its output")
    return w


def _fingerprint(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().as_subclass(torch.Tensor).float().numpy().tobytes())
    return h.hexdigest()[:12]


def import_torchhd(model, *, device: str = "hdc-asic-28nm", preset: Any = "default",
                   binary: bool = True) -> ImportedHDC:
    """``model = (encoder, centroid)`` on the HDC preset ``device``; ``preset``: the price
    list (``"default"``: ``device``; ``None``: unpriced); ``binary``: see the module docstring."""
    from nonvon.registry import registry

    if not (isinstance(model, tuple) and len(model) == 2):
        raise ConfigError("a torchhd model is imported as a tuple (encoder, centroid)",
                          "pass (torchhd.embeddings.Projection, torchhd.models.Centroid)")
    encoder, centroid = model
    target = registry().preset(device)
    if "hdc" not in target.paradigms:
        raise ConfigError(f"preset {device!r} does not price HDC models", "use an HDC preset: " + ", ".join(
            sorted(p.name for p in registry().presets.values() if "hdc" in p.paradigms)))
    sim = ImportedHDC(encoder, centroid, ImportedHDCConfig(
        network=f"Projection+Centroid:{_fingerprint(encoder.weight, centroid.weight)}",
        preset=target.name, binary=binary))
    missing = target.can_price(sorted(sim.op_kinds))
    if missing:
        raise IncompatibleError(f"preset {target.name!r} does not price {missing}",
                                "use binary=True, or an HDC preset that prices float adds "
                                "(hdc-cmos-45nm)")
    sim.preset = resolve_preset(preset, target.name)
    return sim


def _accepts(obj) -> bool:
    return (isinstance(obj, tuple) and len(obj) == 2
            and all(type(o).__module__.startswith("torchhd") for o in obj))


IMPORTER = Importer("torchhd", _accepts, import_torchhd,
                    "a torchhd (Projection encoder, Centroid) tuple onto an HDC preset "
                    "(device='hdc-asic-28nm', 'hdc-cmos-45nm', 'hdc-imc-pcm')")
