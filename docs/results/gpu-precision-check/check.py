"""On a CUDA device: the dense baseline states and sets its precision (see README.md here)."""

from __future__ import annotations

import json
import os

import torch

from nonvon.conformance import digits_task
from nonvon.energy_models import price
from nonvon.registry import registry
from nonvon.simulators.gpu.quantize import quantize_input
from nonvon.tasks import Task

SIMULATORS = ("gpu-mlp", "gpu-mlp-bf16", "gpu-mlp-int8", "gpu-cnn-int8")


def check(name: str, task: Task, reg) -> dict:
    quick = reg.simulators[name].quick
    sim = reg.simulator(name, **quick, measure_batches=(1, 1024)).fit(task, seed=0)
    res = sim.evaluate(task)
    cpu = (reg.simulator(name, **quick, device="cpu")
           .load_state_tensors(sim.state_tensors(), task, seed=0).evaluate(task))
    keys = ("precision", "tf32_matmul", "tf32_cudnn", "input_dtype", "device",
            "energy_per_inference_j", "batch_size")
    out = {"device": str(sim.device), "accuracy": res.accuracy, "cpu_accuracy": cpu.accuracy,
           "same_ledger_as_cpu": dict(res.ledger.totals) == dict(cpu.ledger.totals),
           "measured": [{k: m.details.get(k) for k in keys} for m in res.measurements],
           "modelled_gpu_h100_j": price(res.ledger, reg.preset("gpu-h100")).energy_j,
           "tf32_after": [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]}
    if name.endswith("int8"):
        xs, net = torch.from_numpy(task.x_test), sim.int8_network
        with torch.no_grad():
            on_gpu = net.to("cuda")(quantize_input(xs, net.input_scale).cuda()).cpu()
            on_cpu = net.to("cpu")(quantize_input(xs, net.input_scale))
        out["int_logits_equal_cpu_cuda"] = bool(torch.equal(on_gpu, on_cpu))
    return out


def main() -> None:
    print("torch", torch.__version__, torch.cuda.get_device_name(0))
    task, reg = digits_task(), registry()
    torch.backends.cudnn.allow_tf32 = True  # the caller's setting, to see it set and restored
    results = {}
    for name in SIMULATORS:
        results[name] = check(name, task, reg)
        print(name, json.dumps(results[name]), flush=True)
    with open(os.path.join(os.environ.get("OUT", "."), "gpu_check.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
