"""Spiking networks: LIF dynamics (fused and reference), input coding, surrogate-gradient
classifiers, DNN-to-SNN conversion and NIR export."""

from nonvon.models.spiking.coding import CODINGS, encode
from nonvon.models.spiking.lif import (
    SURROGATES,
    FusedLeaky,
    Surrogate,
    check_lif_params,
    lif_sequence,
    lif_step,
)
from nonvon.models.spiking.networks import (
    BACKENDS,
    LIFConfig,
    Recording,
    SpikingClassifier,
    spiking_cnn,
    spiking_mlp,
)

__all__ = ["CODINGS", "encode", "SURROGATES", "Surrogate", "FusedLeaky", "check_lif_params",
           "lif_sequence", "lif_step", "BACKENDS", "LIFConfig", "Recording", "SpikingClassifier",
           "spiking_cnn", "spiking_mlp"]
