"""A plain supervised training loop shared by the PyTorch-based models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nonvon.progress import progress_bar


def seeded_generator(seed: int) -> torch.Generator:
    torch.manual_seed(seed)  # also seeds dropout masks and parameter init
    return torch.Generator().manual_seed(seed)


def train_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int,
                     batch_size: int, lr: float, weight_decay: float = 0.0, seed: int = 0,
                     device: str | torch.device = "cpu", progress: bool = False,
                     label: str = "train") -> list[float]:
    """Adam with cosine learning-rate decay and cross-entropy loss.

    Returns:
        The mean training loss of each epoch.
    """
    gen = seeded_generator(seed)
    model.to(device).train()
    xt = torch.from_numpy(x).to(device)
    yt = torch.from_numpy(y).to(device)
    n = len(yt)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    loss_fn = nn.CrossEntropyLoss()
    history = []
    with progress_bar(progress) as bar:
        task = bar.add_task(label, total=epochs, status="")
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen).to(device)
            total = torch.zeros((), device=device)
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                loss = loss_fn(model(xt[idx]), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.detach() * len(idx)
            history.append(float(total) / n)
            bar.update(task, advance=1, status=f"loss {history[-1]:.4f}")
    model.eval()
    return history
