"""Spiking networks: LIF dynamics (fused and reference), input coding, surrogate-gradient
classifiers, DNN-to-SNN conversion, NIR export/import and closed-form TTFS neurons."""

from nonvon.models.spiking.coding import CODINGS, encode
from nonvon.models.spiking.conversion import activation_scales, convert_mlp
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
from nonvon.models.spiking.nir_io import from_nir, to_nir
from nonvon.models.spiking.ttfs import (
    first_spike_times,
    first_spike_times_autograd,
    ttfs_encode,
    update_counts,
)
from nonvon.models.spiking.ttfs_training import (
    TTFSNetwork,
    TTFSTrainConfig,
    predict_ttfs,
    shift_images,
    train_ttfs,
    ttfs_loss,
)

__all__ = ["CODINGS", "encode", "SURROGATES", "Surrogate", "FusedLeaky", "check_lif_params",
           "lif_sequence", "lif_step", "BACKENDS", "LIFConfig", "Recording", "SpikingClassifier",
           "spiking_cnn", "spiking_mlp", "convert_mlp", "activation_scales", "to_nir", "from_nir",
           "first_spike_times", "first_spike_times_autograd", "ttfs_encode", "update_counts",
           "TTFSNetwork", "TTFSTrainConfig", "train_ttfs", "ttfs_loss", "predict_ttfs", "shift_images"]
