"""Spiking neuromorphic paradigm: LIF dynamics (fused and reference kernels), input coding,
surrogate-gradient classifiers, DNN-to-SNN conversion, NIR export/import and closed-form TTFS
neurons; the simulators built on them: surrogate-gradient LIF networks counted spike by spike,
chip models (Loihi, TrueNorth, SpiNNaker 2, BrainScaleS-2) with their constraints, and
time-to-first-spike networks (digital and on BrainScaleS-2)."""

from nonvon.paradigms import Paradigm
from nonvon.simulators.spiking.chips import (
    BrainScaleS2,
    ChipConfig,
    ChipSimulator,
    ChipSpec,
    Loihi,
    SpiNNaker2,
    TrueNorth,
)
from nonvon.simulators.spiking.coding import CODINGS, encode
from nonvon.simulators.spiking.conversion import activation_scales, convert_mlp
from nonvon.simulators.spiking.converted_simulator import ConvertConfig, ConvertedSNN
from nonvon.simulators.spiking.counting import CoreMap, Counter, Counts, NeuroBench
from nonvon.simulators.spiking.lif_kernels import (
    SURROGATES,
    FusedLeaky,
    Surrogate,
    check_lif_params,
    lif_sequence,
    lif_step,
)
from nonvon.simulators.spiking.networks import (
    BACKENDS,
    LIFConfig,
    Recording,
    SpikingClassifier,
    spiking_cnn,
    spiking_mlp,
)
from nonvon.simulators.spiking.nir_io import from_nir, to_nir
from nonvon.simulators.spiking.simulator import SnnCNN, SNNConfig, SnnMLP, SpikingSimulator
from nonvon.simulators.spiking.ttfs_kernels import (
    first_spike_times,
    first_spike_times_autograd,
    ttfs_encode,
    update_counts,
)
from nonvon.simulators.spiking.ttfs_simulator import (
    BrainScaleS2TTFS,
    BrainScaleS2TTFSConfig,
    TTFSConfig,
    TTFSSimulator,
)
from nonvon.simulators.spiking.ttfs_training import (
    TTFSNetwork,
    TTFSTrainConfig,
    predict_ttfs,
    shift_images,
    train_ttfs,
    ttfs_loss,
)

__all__ = ["PARADIGM", "SNNConfig", "SpikingSimulator", "SnnMLP", "SnnCNN", "Counts", "Counter", "CoreMap",
           "NeuroBench", "ChipSpec", "ChipConfig", "ChipSimulator", "Loihi", "TrueNorth", "SpiNNaker2",
           "BrainScaleS2", "ConvertConfig", "ConvertedSNN", "TTFSConfig", "TTFSSimulator",
           "BrainScaleS2TTFSConfig", "BrainScaleS2TTFS",
           "CODINGS", "encode", "SURROGATES", "Surrogate", "FusedLeaky", "check_lif_params",
           "lif_sequence", "lif_step", "BACKENDS", "LIFConfig", "Recording", "SpikingClassifier",
           "spiking_cnn", "spiking_mlp", "convert_mlp", "activation_scales", "to_nir", "from_nir",
           "first_spike_times", "first_spike_times_autograd", "ttfs_encode", "update_counts",
           "TTFSNetwork", "TTFSTrainConfig", "train_ttfs", "ttfs_loss", "predict_ttfs", "shift_images"]

#: This package's paradigm, declared in the ``nonvon.paradigms`` entry point like any plugin's.
PARADIGM = Paradigm(
    "spiking", label="spiking neuromorphic", order=10,
    colours=("#1f5fbf", "#6baed6", "#7b3fa0", "#17a2b8", "#08306b", "#b39ddb", "#4a6fa5"),
    headline_presets=("loihi", "truenorth", "spinnaker2", "brainscales2", "npu-7nm", "cmos-7nm"),
)
