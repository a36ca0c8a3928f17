"""Probe: how long one training epoch and one evaluation of each simulator take alone on this
machine (full MNIST), to plan the whole comparison. Prints one JSON line per simulator.

Fits each simulator twice, with 1 and with 2 epochs (chips: 1 quantized fine-tune epoch),
so that the per-epoch time and the fixed cost (data, start-up, calibration) separate.

    NONVON_DATA=... python docs/results/cell-times-h200/probe_cell_times.py snn-ttfs loihi ...
"""
import json
import sys
import time

import torch

from nonvon.registry import registry

EPOCHS = {"snn-ttfs": 60, "brainscales2-ttfs": 60, "onn-diffractive": 10, "loihi": 17,
          "spinnaker2": 17, "snn-mlp": 15, "onn-mzi": 15, "snn-cnn": 20, "snn-converted": 20,
          "hdc-idlevel": 10, "hdc-projection": 10, "vqc": 5, "gpu-mlp": 20, "gpu-cnn": 15}


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main(names):
    reg = registry()
    task = reg.task("mnist", progress=False)
    for spec in names:
        name, _, extra = spec.partition(":")
        over = dict(kv.split("=") for kv in extra.split(",") if kv)
        over = {k: (v == "true") if v in ("true", "false") else v for k, v in over.items()}
        fits = {}
        for e in (1, 2):
            cfg = {"epochs": e, **({"qat_epochs": 0} if name in ("loihi", "spinnaker2") else {}), **over}
            sim = reg.simulator(name, **cfg)
            sync()
            t0 = time.perf_counter()
            sim.fit(task, seed=0, progress=False)
            sync()
            fits[e] = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = sim.evaluate(task)
        sync()
        ev = time.perf_counter() - t0
        per_epoch, fixed = fits[2] - fits[1], 2 * fits[1] - fits[2]
        print(json.dumps({"sim": spec, "fit_1_epoch_s": round(fits[1], 2),
                          "fit_2_epochs_s": round(fits[2], 2),
                          "per_epoch_s": round(per_epoch, 2), "eval_s": round(ev, 2),
                          "full_cell_estimate_s": round(fixed + EPOCHS.get(name, 1) * per_epoch + ev, 1),
                          "accuracy_after_2_epochs": res.accuracy}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
