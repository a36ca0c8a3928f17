"""Forward optical neural networks: MZI meshes (hybrid, with electronic ReLU) and diffractive stacks."""

from nonvon.paradigms import Paradigm
from nonvon.simulators.optical.diffractive_simulator import DiffractiveConfig, DiffractiveOnn, lin2018_note
from nonvon.simulators.optical.mzi_simulator import Chip, MziConfig, MziOnn

__all__ = ["PARADIGM", "MziOnn", "MziConfig", "Chip", "DiffractiveOnn", "DiffractiveConfig", "lin2018_note"]

#: This package's paradigm, declared in the ``nonvon.paradigms`` entry point like any plugin's.
PARADIGM = Paradigm(
    "optical", label="forward optical", order=20,
    colours=("#d62728", "#ff9f1c", "#8c2d04", "#f4a6a6"),
    headline_presets=("photonic-mzi", "diffractive-nir"),
    landauer_floor=False,  # its floor is the light (the shot-noise bound), not its digital periphery
)
