"""What every simulator that runs a PyTorch network shares: its device, parameter count,
trained state and the shared training of its network."""

from __future__ import annotations

import torch

from nonvon.errors import ConfigError
from nonvon.models.training import train_classifier
from nonvon.training_memo import shared_training

__all__ = ["TorchBacked", "torch_device"]


class TorchBacked:
    """Mixin for simulators holding ``self.network`` and a ``config.device`` option."""

    network: torch.nn.Module | None = None

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.network.parameters()) if self.network else 0

    # Default trained state: the network's state_dict; ``_build(task)`` makes the empty network.
    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor], task) -> None:
        self.network = self._build(task).to(self.device)
        self.network.load_state_dict({k: torch.as_tensor(v) for k, v in tensors.items()})

    def _train_shared(self, task, *, seed: int, progress: bool) -> bool:
        """Train ``self.network`` with :func:`~nonvon.models.training.train_classifier` and the
        config's ``epochs``, ``batch_size``, ``lr`` and ``weight_decay``, unless the run's
        training memo (``self.context.training_memo``) already holds the same training, keyed
        by ``self._training_recipe(task, seed)``; returns whether it came from the memo."""
        c = self.config

        def train() -> None:
            train_classifier(self.network, task.x_train, task.y_train, epochs=c.epochs,
                             batch_size=c.batch_size, lr=c.lr, weight_decay=c.weight_decay,
                             seed=seed, device=self.device, progress=progress,
                             label=f"{self.name} train")

        return shared_training(self.network, self._training_recipe(task, seed), train,
                               self.context.training_memo, wait=not self.context.prefetch)

    @property
    def device(self) -> torch.device:
        """``config.device``: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``."""
        return torch_device(self.config.device)


def torch_device(want: str) -> torch.device:
    """The torch device a ``device`` option names: ``"auto"`` (CUDA when present), ``"cpu"``
    or ``"cuda"`` (refused when there is none)."""
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA device is available", "use device='auto' or 'cpu'")
    return torch.device("cuda" if want != "cpu" and torch.cuda.is_available() else "cpu")
