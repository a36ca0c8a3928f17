"""Forward optical neural networks: MZI meshes (hybrid, with electronic ReLU) and diffractive stacks."""

from nonvon.simulators.optical.diffractive import DiffractiveConfig, DiffractiveOnn, lin2018_note
from nonvon.simulators.optical.mzi import Chip, MziConfig, MziOnn

__all__ = ["MziOnn", "MziConfig", "Chip", "DiffractiveOnn", "DiffractiveConfig", "lin2018_note"]
