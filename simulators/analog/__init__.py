"""Analog in-memory computing: PCM and RRAM crossbars, a paradigm plugin.

Everything nonvon needs of it comes through entry points (``nonvon.paradigms``,
``nonvon.simulators``, ``nonvon.presets``); the core never names it. Importing the package
registers its op kinds (:mod:`.kinds`).

Registered simulators: ``analog-pcm`` (:class:`AnalogPCM`) and ``analog-rram``
(:class:`AnalogRRAM`), MLPs, and their CNN variants ``analog-pcm-cnn`` and ``analog-rram-cnn``,
all :class:`AnalogCrossbar` with an :class:`AnalogConfig`; presets
in ``presets/`` (:data:`PRESET_DIR`): ``hermes-pcm`` and ``neurram-rram``.
"""

from pathlib import Path

from nonvon.paradigms import Paradigm
from nonvon.simulators.analog import kinds
from nonvon.simulators.analog.crossbar import TileMap, analog_linear, program_layer, split_sizes
from nonvon.simulators.analog.devices import DEVICES, PCM, RRAM, DeviceModel
from nonvon.simulators.analog.simulator import (
    DRIFT_TIMES_S,
    AnalogConfig,
    AnalogCrossbar,
    AnalogPCM,
    AnalogPCMCNN,
    AnalogRRAM,
    AnalogRRAMCNN,
)

__all__ = ["PARADIGM", "PRESET_DIR", "DRIFT_TIMES_S", "DEVICES", "PCM", "RRAM", "AnalogConfig",
           "AnalogCrossbar", "AnalogPCM", "AnalogPCMCNN", "AnalogRRAM", "AnalogRRAMCNN",
           "DeviceModel", "TileMap", "analog_linear", "kinds", "program_layer", "split_sizes"]

#: The presets of this paradigm, registered by its own ``nonvon.presets`` entry point.
PRESET_DIR = Path(__file__).with_name("presets")

#: This package's paradigm, declared in the ``nonvon.paradigms`` entry point like any plugin's.
PARADIGM = Paradigm(
    "analog", label="analog in-memory computing", order=45,
    colours=("#8c564b", "#c49c94", "#5b3a29", "#e0b89a"),
    headline_presets=("hermes-pcm", "neurram-rram"),
)
