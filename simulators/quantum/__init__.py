"""Variational quantum classifiers: qiskit circuits, a compiled JAX statevector trainer,
device evaluation (transpilation, shots, qiskit-aer noise, OpenQASM 3) and QPU energy."""

from nonvon.simulators.quantum.simulator import VQC, VQCClassicalTwin, VQCConfig, twin_hidden
from nonvon.simulators.quantum.statevector import (
                                                   MAX_QUBITS,
                                                   SUPPORTED_GATES,
                                                   Program,
                                                   compile_program,
                                                   translate,
)

__all__ = ["VQC", "VQCClassicalTwin", "VQCConfig", "twin_hidden", "translate", "compile_program",
           "Program", "SUPPORTED_GATES", "MAX_QUBITS"]
