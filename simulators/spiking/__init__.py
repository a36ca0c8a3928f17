"""Spiking neuromorphic simulators: surrogate-gradient LIF networks counted spike by spike,
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
from nonvon.simulators.spiking.converted import ConvertConfig, ConvertedSNN
from nonvon.simulators.spiking.counting import CoreMap, Counter, Counts, NeuroBench
from nonvon.simulators.spiking.simulator import SnnCNN, SNNConfig, SnnMLP, SpikingSimulator
from nonvon.simulators.spiking.ttfs import (
    BrainScaleS2TTFS,
    BrainScaleS2TTFSConfig,
    TTFSConfig,
    TTFSSimulator,
)

__all__ = ["PARADIGM", "SNNConfig", "SpikingSimulator", "SnnMLP", "SnnCNN", "Counts", "Counter", "CoreMap",
           "NeuroBench", "ChipSpec", "ChipConfig", "ChipSimulator", "Loihi", "TrueNorth", "SpiNNaker2",
           "BrainScaleS2", "ConvertConfig", "ConvertedSNN", "TTFSConfig", "TTFSSimulator",
           "BrainScaleS2TTFSConfig", "BrainScaleS2TTFS"]

#: This package's paradigm, declared in the ``nonvon.paradigms`` entry point like any plugin's.
PARADIGM = Paradigm(
    "spiking", label="spiking neuromorphic", order=10,
    colours=("#1f5fbf", "#6baed6", "#7b3fa0", "#17a2b8", "#08306b", "#b39ddb", "#4a6fa5"),
    headline_presets=("loihi", "truenorth", "spinnaker2", "brainscales2", "npu-7nm", "cmos-7nm"),
)
