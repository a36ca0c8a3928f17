"""Measured GPU energy from NVML's total-energy counter (nvidia-ml-py).

The counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since driver
load, Volta and newer) updates about every 100 ms, so every window here lasts
well over a second. Energy per inference is the energy above the idle baseline
(idle power measured just before, over its own window) divided by the number
of inferences run in the window.

What runs is the caller's: the GPU baseline sets the precision it measures (fp32 with TF32
off, or bf16) around the call and adds that setting to the returned details
(``simulators/gpu/simulator.py``, ``matmul_precision``), so a measured row states the
precision its modelled twin prices.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nonvon.errors import NonvonError

__all__ = ["nvml_available", "measure_gpu_energy", "measure_idle_power"]


def nvml_available() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount() > 0
    except Exception:  # no library, no driver, no device: all mean "cannot measure"
        return False


def _energy_j(handle) -> float:
    import pynvml

    return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3


def measure_idle_power(*, device_index: int = 0, idle_s: float = 2.0, settle_s: float = 0.5) -> float:
    """Mean power (W) of the GPU over ``idle_s`` seconds with nothing running, after
    ``settle_s`` seconds for clocks and power to come down from earlier work."""
    import pynvml

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
    time.sleep(settle_s)
    e0, t0 = _energy_j(handle), time.perf_counter()
    time.sleep(idle_s)
    return (_energy_j(handle) - e0) / (time.perf_counter() - t0)


def measure_gpu_energy(run_batch: Callable[[], None], batch_size: int, *, sync: Callable[[], None],
                       device_index: int = 0, window_s: float = 2.0, idle_s: float = 2.0,
                       warmup: int = 10, idle_w: float | None = None) -> dict:
    """Energy per inference of ``run_batch`` (one batch of ``batch_size`` inferences).

    Args:
        run_batch: launches one batch of inference on the GPU.
        batch_size: inferences per call of ``run_batch``.
        sync: waits for the GPU to finish (``torch.cuda.synchronize``).
        window_s: minimum busy window (>= 1 s: the counter updates about every 100 ms).
        idle_s: window over which idle power is measured.
        idle_w: idle power already measured (:func:`measure_idle_power`, e.g. once for
            several measurements in a row): no idle window is taken here.

    Returns:
        ``energy_per_inference_j`` (above idle), ``gross_energy_per_inference_j``,
        ``latency_per_inference_s`` (wall time / inferences, i.e. 1 / throughput),
        ``batch_latency_s``, ``idle_power_w``, ``busy_power_w``, ``window_s``,
        ``n_inferences`` and ``device``.
    """
    import pynvml

    if window_s < 1.0:
        raise NonvonError(f"window_s={window_s} is shorter than 1 s",
                          "NVML's energy counter updates about every 100 ms; use >= 1 s")
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
    name = pynvml.nvmlDeviceGetName(handle)
    for _ in range(warmup):
        run_batch()
    sync()

    if idle_w is None:  # measured here, after the warm-up has settled
        idle_w = measure_idle_power(device_index=device_index, idle_s=idle_s)

    calls = 0
    e0, t0 = _energy_j(handle), time.perf_counter()
    while True:
        run_batch()
        calls += 1
        if calls % 8 == 0:
            sync()
            if time.perf_counter() - t0 >= window_s:
                break
    sync()
    elapsed = time.perf_counter() - t0
    gross = _energy_j(handle) - e0
    n = calls * batch_size
    return {
        "device": name if isinstance(name, str) else name.decode(),
        # Not clamped: a value <= 0 means the load was below the counter's noise floor,
        # and the caller must see that rather than a plausible-looking zero.
        "energy_per_inference_j": (gross - idle_w * elapsed) / n,
        "gross_energy_per_inference_j": gross / n,
        "latency_per_inference_s": elapsed / n,
        "batch_latency_s": elapsed / calls,
        "idle_power_w": idle_w,
        "busy_power_w": gross / elapsed,
        "window_s": elapsed,
        "n_inferences": n,
        "batch_size": batch_size,
    }
