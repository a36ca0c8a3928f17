"""Trained weights shared between cells that train the same network the same way.

``snn-mlp``, ``loihi`` and ``spinnaker2`` start from the same surrogate-gradient training of
the same LIF network (the chips then quantize and fine-tune it for themselves). In a
comparison the three cells would train it three times; with a memo folder the first cell
trains and saves the weights, and the others load them. The key is what defines the
training (the caller's description: data fingerprint, settings, seed, device kind, library
versions), never the weights alone, since settings outside the weights (a neuron's decay,
a quantizer) change what training does.

The runner names the folder (``<out>/cache/training``) in the run context it passes to
``Simulator.fit`` (:class:`nonvon.context.RunContext`), in its own process and in its worker
processes; with no folder, :func:`shared_training` simply trains. A cell that needs a network
another process is training waits for it (a lock file per key) rather than training it too.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from nonvon._io import atomic_write_bytes, content_key

__all__ = ["shared_training", "training_recipe"]


@contextlib.contextmanager
def _locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the lock file ``path``; yields ``False`` (not held) when ``wait`` is off and
    another process holds it."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): concurrent cells may both train
        yield True
        return
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def training_recipe(what: str, task, settings: dict[str, Any], seed: int,
                    device: torch.device) -> dict[str, Any]:
    """The key of a training: what is trained, on which data, with which settings and seed,
    where, and with which library versions (the weights depend on all of them)."""
    from nonvon.result import library_versions

    return {"training": what, "task": task.name, "data": task.fingerprint, "settings": settings,
            "seed": seed, "device": device.type, "versions": library_versions()}


def shared_training(module: torch.nn.Module, recipe: dict[str, Any], train: Callable[[], None],
                    folder: str | os.PathLike | None, *, wait: bool = True) -> bool:
    """Run ``train()``, which trains ``module`` in place, unless ``folder`` holds the result
    of the same ``recipe``; then load that instead.

    Args:
        module: the freshly built network (same architecture and initialisation as the
            one the recipe trains).
        recipe: everything that determines the trained weights, as JSON-able values.
        train: trains ``module`` in place.
        folder: the memo folder (``sim.context.training_memo``); ``None``: just train.
        wait: when another process is training the same recipe, wait and load its weights;
            ``False`` (a prefetch, :attr:`~nonvon.context.RunContext.prefetch`): return at once,
            leaving ``module`` untrained, since that process fills the memo.

    Returns:
        ``True`` when the weights came from the memo.
    """
    if not folder:
        train()
        return False
    path = Path(folder) / f"{content_key(recipe)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock"), wait) as held:
        if not held:
            return False
        if path.exists():
            device = next(module.parameters()).device
            module.load_state_dict(torch.load(path, map_location=device, weights_only=True))
            return True
        train()
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, buf)
        atomic_write_bytes(path, buf.getvalue())
    return False
