"""Variational quantum classifiers: qiskit circuits, a compiled JAX statevector trainer,
device evaluation (transpilation, shots, qiskit-aer noise, OpenQASM 3) and QPU energy."""

from nonvon.paradigms import Paradigm
from nonvon.simulators.quantum.simulator import VQC, VQCClassicalTwin, VQCConfig, twin_hidden
from nonvon.simulators.quantum.statevector import (
                                                   MAX_QUBITS,
                                                   SUPPORTED_GATES,
                                                   Program,
                                                   compile_program,
                                                   translate,
)

__all__ = ["PARADIGM", "VQC", "VQCClassicalTwin", "VQCConfig", "twin_hidden", "translate", "compile_program",
           "Program", "SUPPORTED_GATES", "MAX_QUBITS"]

#: This package's paradigm, declared in the ``nonvon.paradigms`` entry point like any plugin's.
PARADIGM = Paradigm(
    "quantum", label="variational quantum", order=40,
    colours=("#e377c2", "#9c1f6e", "#f7b6d2"),
    headline_presets=("qpu-superconducting",),
)
