"""GPU baseline simulator (MLP and CNN), modelled and, on CUDA, measured with NVML."""

from nonvon.paradigms import Paradigm
from nonvon.simulators.gpu.counting import OpCounter
from nonvon.simulators.gpu.simulator import (
    GpuBaseline,
    GpuCNN,
    GpuCNNBf16,
    GpuCNNInt8,
    GpuConfig,
    GpuMLP,
    GpuMLPBf16,
    GpuMLPInt8,
)

__all__ = ["PARADIGM", "GpuBaseline", "GpuMLP", "GpuCNN", "GpuConfig", "OpCounter", "GpuMLPInt8",
           "GpuMLPBf16", "GpuCNNInt8", "GpuCNNBf16"]

#: This package's paradigm, declared in the ``nonvon.paradigms`` entry point like any plugin's.
PARADIGM = Paradigm(
    "gpu", label="conventional digital (GPU, CPU, NPU)", order=0,
    colours=("#111111", "#6b6b6b", "#a8a8a8", "#3d3d3d"),
    headline_presets=("npu-7nm", "gpu-h100", "cmos-7nm"),
    reference_simulator="gpu-mlp-int8",  # the matched-precision dense baseline (issue #17)
)
