"""GPU baseline simulator (MLP and CNN), modelled and, on CUDA, measured with NVML."""

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

__all__ = ["GpuBaseline", "GpuMLP", "GpuCNN", "GpuConfig", "OpCounter", "GpuMLPInt8",
           "GpuMLPBf16", "GpuCNNInt8", "GpuCNNBf16"]
