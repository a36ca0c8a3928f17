"""GPU baseline simulator (MLP and CNN), modelled and, on CUDA, measured with NVML."""

from nonvon.simulators.gpu.counting import OpCounter
from nonvon.simulators.gpu.simulator import GpuBaseline, GpuCNN, GpuConfig, GpuMLP

__all__ = ["GpuBaseline", "GpuMLP", "GpuCNN", "GpuConfig", "OpCounter"]
