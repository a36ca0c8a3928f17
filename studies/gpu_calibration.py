"""Measure the constants the gpu-h100 preset assumes, on the GPU at hand.

Prints one JSON object: idle power (NVML energy counter over an idle window),
kernel-launch latency (many tiny kernels in a synchronized loop), achieved
fp32 / bf16 matrix throughput and device-memory copy bandwidth. These are the
figures the preset's notes compare against (see docs/energy-model.md).

    python studies/gpu_calibration.py
"""

from __future__ import annotations

import json
import time

import torch


def _timed(fn, reps: int) -> float:
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    import pynvml

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this study measures a GPU")
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    e0, t0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter()
    time.sleep(5.0)
    idle_w = (pynvml.nvmlDeviceGetTotalEnergyConsumption(h) - e0) / 1e3 / (time.perf_counter() - t0)

    tiny = torch.zeros(1, device="cuda")
    launch_s = _timed(lambda: tiny.add_(1.0), 20000)

    out = {"device": torch.cuda.get_device_name(), "idle_power_w": idle_w,
           "kernel_launch_s": launch_s,
           "power_limit_w": pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3}
    n = 8192
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        torch.backends.cuda.matmul.allow_tf32 = False
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        out[f"matmul_{name}_tflops"] = 2 * n**3 / _timed(lambda a=a, b=b: a @ b, 10) / 1e12
    x = torch.empty(2**30 // 4, device="cuda")
    y = torch.empty_like(x)
    out["copy_tb_per_s"] = 2 * x.numel() * 4 / _timed(lambda: y.copy_(x), 20) / 1e12
    print(json.dumps(out))


if __name__ == "__main__":
    main()
