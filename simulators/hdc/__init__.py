"""Hyperdimensional computing: torchhd encoders and learners, bit-packed binary inference.

Registered simulators: ``hdc-projection`` (:class:`HDCProjection`) and ``hdc-idlevel``
(:class:`HDCIDLevel`), both :class:`HDCSimulator` with an :class:`HDCConfig`; and
``hdc-lowdim`` (:class:`HDCLowDim`, a :class:`LowDimConfig`): an encoder fitted to the task
at tens of dimensions, trained threshold layers or a designed ID-level item memory (issue #24).
"""

from nonvon.paradigms import Paradigm
from nonvon.simulators.hdc.design import DesignedIDLevelEncoder
from nonvon.simulators.hdc.encoders import IDLevelEncoder, ProjectionEncoder, quantize
from nonvon.simulators.hdc.learners import LEARNERS, MODELS, train_class_vectors
from nonvon.simulators.hdc.lowdim import LearnedEncoder
from nonvon.simulators.hdc.packing import (
    WORD_BITS,
    hamming_packed,
    memory_bytes,
    n_words,
    pack_bits,
    popcount64,
    unpack_bits,
)
from nonvon.simulators.hdc.simulator import (
    ACTIVATIONS,
    ENCODERS,
    HDCConfig,
    HDCIDLevel,
    HDCLowDim,
    HDCProjection,
    HDCSimulator,
    LowDimConfig,
)

__all__ = [
    "PARADIGM",
    "ACTIVATIONS",
    "ENCODERS",
    "LEARNERS",
    "MODELS",
    "WORD_BITS",
    "DesignedIDLevelEncoder",
    "HDCConfig",
    "HDCIDLevel",
    "HDCLowDim",
    "HDCProjection",
    "HDCSimulator",
    "IDLevelEncoder",
    "LearnedEncoder",
    "LowDimConfig",
    "ProjectionEncoder",
    "hamming_packed",
    "memory_bytes",
    "n_words",
    "pack_bits",
    "popcount64",
    "quantize",
    "train_class_vectors",
    "unpack_bits",
]

#: This package's paradigm, declared in the ``nonvon.paradigms`` entry point like any plugin's.
PARADIGM = Paradigm(
    "hdc", label="hyperdimensional computing", order=30,
    colours=("#2ca02c", "#98d986", "#00664d", "#b5cf6b"),
    headline_presets=("hdc-asic-28nm", "npu-7nm", "cmos-7nm"),
)
