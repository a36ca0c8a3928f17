"""Any trained ``torch.nn.Module`` on the digital presets (GPU, CMOS, NPU), counted by
nonvon's :class:`~nonvon.simulators.gpu.counting.OpCounter`.

``nonvon.load_network(module, device="gpu-h100")`` returns an :class:`ImportedTorch`: the
module as given (not retrained), run at ``dtype`` (fp32, or bf16), every leaf layer counted
by the counter's rules (:data:`~nonvon.simulators.gpu.counting.LAYER_RULES`), and the
arithmetic the module's own ``forward`` does between layers (a residual ``out + identity``,
``F.relu``, ``torch.flatten``) counted too, seen through a ``TorchFunctionMode``:

- elementwise ``add``/``sub`` and ``mul``/``div``: one ``add_<dtype>`` or ``mul_<dtype>``
  per output element, their operands and result as ``sram_byte`` and one ``kernel_launch``
  (as a layer call); ``relu``: one ``cmp_<dtype>`` per element;
- views and copies (``flatten``, ``reshape``, ``view``, ``cat``, indexing, ...): nothing;
- any other function: refused, naming it, on the first (check) run in ``fit``.

A layer the counter cannot count is refused when the module is loaded, naming the layer and
the fix; nothing is priced at zero by omission. Memory and I/O follow the counter's model
(the module docstring of :mod:`.counting`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nonvon.config import choice, positive_int
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.importers import Imported, Importer, check_options, resolve_preset
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.simulators.gpu.counting import (
    _NO_COMPUTE,
    LAYER_RULES,
    OpCounter,
    _unsupported,
    op_kinds_for,
)
from nonvon.tasks import Task

__all__ = ["ImportedTorch", "ImportedTorchConfig", "import_torch", "IMPORTER", "check_countable"]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
_CLASSIC = (nn.Linear, nn.Conv2d, nn.ReLU, nn.MaxPool2d)
_FREE = {"view", "reshape", "flatten", "contiguous", "permute", "transpose", "squeeze",
         "unsqueeze", "__getitem__", "cat", "stack", "chunk", "split", "expand", "clone",
         "detach", "to", "float", "type", "narrow", "unflatten", "movedim", "t", "__get__",
         "__len__", "size", "dim", "numel", "__setstate__", "requires_grad_", "__format__",
         "__repr__", "__bool__", "__index__", "__int__", "__float__", "__iter__"}
_ADD = {"add", "__add__", "__radd__", "__iadd__", "add_", "sub", "__sub__", "__rsub__",
        "__isub__", "sub_"}
_MUL = {"mul", "__mul__", "__rmul__", "__imul__", "mul_", "div", "__truediv__", "__itruediv__",
        "div_"}
_CMP = {"relu", "relu_"}


def check_countable(module: nn.Module) -> None:
    """Raise :class:`ConfigError` naming the first leaf layer the counter has no rule for."""
    rules = tuple(cls for classes, _ in LAYER_RULES
                  for cls in (classes if isinstance(classes, tuple) else (classes,)))
    for name, m in module.named_modules():
        if any(True for _ in m.children()) or isinstance(m, _NO_COMPUTE + _CLASSIC + rules):
            continue
        err = _unsupported(m)
        err.message = f"layer {name!r}: {err.message}"
        raise err


@dataclasses.dataclass(frozen=True)
class ImportedTorchConfig:
    """How an imported module runs.

    Args:
        network: what was imported (class name and a hash of its parameters), for the record.
        preset: the preset it is priced on (e.g. ``gpu-h100``, ``cmos-7nm``, ``npu-7nm``).
        dtype: ``"fp32"`` or ``"bf16"`` (the module is cast; int8 needs nonvon's own
            quantized baselines, ``gpu-mlp-int8`` / ``gpu-cnn-int8``).
        input_shape: one sample's shape as the module takes it (``None``: the task's images
            get a channel axis when the first layer is a convolution, else are flattened).
        eval_batch_size: samples per counted batch.
    """

    network: str = ""
    preset: str = "gpu-h100"
    dtype: str = "fp32"
    input_shape: tuple[int, ...] | None = None
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        choice("dtype", self.dtype, tuple(_DTYPES))
        positive_int("eval_batch_size", self.eval_batch_size, example=1024)
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))


class _Functional(TorchFunctionMode):
    """Counts the arithmetic a module's ``forward`` does outside its leaf layers."""

    def __init__(self, counter: OpCounter, depth: list[int]):
        super().__init__()
        self.counter, self.depth = counter, depth

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.depth[0] == 0 and isinstance(out, torch.Tensor):
            name = getattr(func, "__name__", str(func))
            self._count(name, args, out)
        return out

    def _count(self, name: str, args: tuple, out: torch.Tensor) -> None:
        if name in _FREE:
            return
        kind = "add" if name in _ADD else "mul" if name in _MUL else "cmp" if name in _CMP else None
        if kind is None:
            raise ConfigError(f"the module's forward calls torch function {name!r} outside a "
                              "layer, and nonvon has no op count for it",
                              "use a layer nonvon counts (e.g. nn.ReLU for F.relu), or elementwise "
                              "add/sub/mul/div, views and cat, which are counted")
        t, c = self.counter.totals, self.counter
        t[f"{kind}_{c.dtype}"] += out.numel()
        operands = sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))
        moved = operands + out.numel() * out.element_size()
        c._peak_activation_bytes = max(c._peak_activation_bytes, moved)
        t["sram_byte"] += moved
        t["kernel_launch"] += 1


class ImportedTorch(Imported, Simulator):
    """A trained ``torch.nn.Module`` run on a digital device and counted layer by layer."""

    paradigm = "gpu"
    Config = ImportedTorchConfig

    def __init__(self, network: nn.Module, config: ImportedTorchConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        check_countable(network)
        self.network = network
        self.name = f"torch:{type(network).__name__}"

    @property
    def op_kinds(self) -> frozenset[str]:
        return op_kinds_for(self.config.dtype) | {f"mul_{self.config.dtype}"}

    @property
    def precision(self) -> str:
        return self.config.dtype

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(input_kinds=("image", "vector"))

    def _shape(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.input_shape is not None:
            return x.reshape(len(x), *self.config.input_shape)
        first = next((m for m in self.network.modules() if not any(True for _ in m.children())), None)
        if isinstance(first, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return x.unsqueeze(1)
        return x if isinstance(first, nn.Flatten) else x.reshape(len(x), -1)

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        # not trained here: one counted check run on a training sample (an uncountable
        # function or a wrong output shape is refused now, before the evaluation)
        x = torch.from_numpy(np.ascontiguousarray(task.x_train[:1]))
        try:
            logits, _ = self._run(x)
        except RuntimeError as e:
            raise IncompatibleError(f"{self.name} does not take task {task.name!r}'s inputs "
                                    f"{tuple(task.input_shape)}: {e}",
                                    "pass input_shape=... as the module takes one sample") from None
        if tuple(logits.shape) != (1, task.n_classes):
            raise IncompatibleError(f"{self.name} gives outputs of shape {tuple(logits.shape[1:])} "
                                    f"for task {task.name!r} with {task.n_classes} classes",
                                    "import a classifier whose last layer has one output per class")

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, OpCounter]:
        dt = _DTYPES[self.config.dtype]
        net = self.network.to(dt).eval()
        counter, depth = OpCounter(net, self.config.dtype), [0]
        handles = []
        labels_and_logits = []
        try:
            with torch.inference_mode(), counter:
                def enter(*_):
                    depth[0] += 1

                def leave(*_):
                    depth[0] -= 1

                for m in net.modules():
                    if not any(True for _ in m.children()):
                        handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
                for i in range(0, len(x), self.config.eval_batch_size):
                    batch = self._shape(x[i:i + self.config.eval_batch_size]).to(dt)
                    counter.count_input(batch)
                    with _Functional(counter, depth):
                        logits = net(batch)
                    counter.count_argmax(logits)
                    labels_and_logits.append(logits.float())
        finally:
            for h in handles:
                h.remove()
            net.float()
        return torch.cat(labels_and_logits), counter

    def _predict(self, x: np.ndarray) -> Prediction:
        logits, counter = self._run(torch.from_numpy(np.ascontiguousarray(x)))
        return Prediction(logits.argmax(1).numpy(), counter.ledger(len(x)),
                          metrics=counter.neurobench_metrics(len(x)))


def _fingerprint(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().float().numpy().tobytes())
    return f"{type(module).__name__}:{h.hexdigest()[:12]}"


def import_torch(module: nn.Module, *, device: str = "gpu-h100", preset: Any = "default",
                 **options) -> ImportedTorch:
    """A trained module on a digital preset: ``device`` names the preset it runs on
    (``gpu-h100``, ``cmos-7nm``, ...); ``preset`` prices it (``"default"``: ``device``'s;
    ``None``: unpriced); ``dtype``, ``input_shape``, ``eval_batch_size``: see
    :class:`ImportedTorchConfig`."""
    check_options("the torch importer", options, ("dtype", "input_shape", "eval_batch_size"))
    from nonvon.registry import registry

    target = registry().preset(device)
    if "gpu" not in target.paradigms:
        raise ConfigError(f"preset {device!r} does not price digital (gpu-paradigm) networks",
                          "use a digital preset: " + ", ".join(
                              sorted(p.name for p in registry().presets.values() if "gpu" in p.paradigms)))
    sim = ImportedTorch(module, ImportedTorchConfig(network=_fingerprint(module), preset=target.name,
                                                    **options))
    sim.preset = resolve_preset(preset, target.name)
    return sim


def _accepts(obj) -> bool:
    return isinstance(obj, nn.Module) and not type(obj).__module__.startswith("torchhd")


IMPORTER = Importer("torch", _accepts, import_torch,
                    "a trained torch.nn.Module onto a digital preset (device='gpu-h100', "
                    "'cmos-7nm', 'npu-7nm', ...)")
