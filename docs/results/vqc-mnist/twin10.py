import json
import sys

sys.path.insert(0, "studies")
from vqc_mnist import SETTINGS, _task

import nonvon
from nonvon.simulators.quantum import VQCClassicalTwin

s = SETTINGS["10class"]
reg = nonvon.registry()
task = _task(reg, s, None)
cfg = dict(s.cfg, shots=1000)
twin = VQCClassicalTwin(**cfg)
res = twin.fit(task, seed=0).evaluate(task)
print(json.dumps({"setting": "10class", "twin_accuracy": res.accuracy, "twin_n_params": twin.n_params,
                  "twin_hidden": twin.hidden, "vqc_n_params": twin.vqc_n_params, "n_test": res.n_evaluated}))
