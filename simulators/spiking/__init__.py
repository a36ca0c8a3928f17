"""Spiking neuromorphic simulators: surrogate-gradient LIF networks counted spike by spike,
and chip models (Loihi, TrueNorth, SpiNNaker 2, BrainScaleS-2) with their constraints."""

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

__all__ = ["SNNConfig", "SpikingSimulator", "SnnMLP", "SnnCNN", "Counts", "Counter", "CoreMap",
           "NeuroBench", "ChipSpec", "ChipConfig", "ChipSimulator", "Loihi", "TrueNorth", "SpiNNaker2",
           "BrainScaleS2", "ConvertConfig", "ConvertedSNN"]
