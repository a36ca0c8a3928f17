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
                     label: str = "train", cuda_graph: bool = False) -> list[float]:
    """Adam with cosine learning-rate decay and cross-entropy loss.

    Args:
        cuda_graph: on CUDA, replay each full-batch training step as one CUDA graph (for
            networks whose step is thousands of small kernels, such as MZI meshes); the
            model's forward must then be capturable (no host copies or syncs). Adam then
            keeps its step count and learning rate on the device (``capturable``), with or
            without the graph, so the two give the same weights. Ignored on the CPU.

    Returns:
        The mean training loss of each epoch.
    """
    gen = seeded_generator(seed)
    model.to(device).train()
    xt = torch.from_numpy(x).to(device)
    yt = torch.from_numpy(y).to(device)
    n = len(yt)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    graphed = cuda_graph and xt.is_cuda
    opt = torch.optim.Adam(model.parameters(), weight_decay=weight_decay, capturable=graphed,
                           lr=torch.tensor(lr, device=xt.device) if graphed else lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    loss_fn = nn.CrossEntropyLoss()

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss.detach()

    def eager(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        return step(xb, yb)

    run = _GraphedStep(step, eager, opt, xt, yt, batch_size) if graphed else eager
    history = []
    with progress_bar(progress) as bar:
        task = bar.add_task(label, total=epochs, status="")
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen).to(device)
            total = torch.zeros((), device=device)
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                loss = run(xt[idx], yt[idx])
                sched.step()
                total += loss * len(idx)
            history.append(float(total) / n)
            bar.update(task, advance=1, status=f"loss {history[-1]:.4f}")
    model.eval()
    return history


class _GraphedStep:
    """A training step replayed as one CUDA graph (PyTorch's whole-network capture).

    The graph reads its batch from static buffers: each call copies the batch in and replays.
    The first ``WARMUP`` calls run eagerly on a side stream (capture needs the optimizer's
    state to exist); a batch of another size (the ragged last one) runs eagerly.
    """

    WARMUP = 3

    def __init__(self, step, eager, opt: torch.optim.Optimizer, xt: torch.Tensor,
                 yt: torch.Tensor, batch: int):
        self.step, self.eager, self.opt, self.batch = step, eager, opt, batch
        self.x = torch.zeros((batch, *xt.shape[1:]), dtype=xt.dtype, device=xt.device)
        self.y = torch.zeros(batch, dtype=yt.dtype, device=yt.device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.loss: torch.Tensor | None = None
        self.warm = 0

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        if len(yb) != self.batch:
            return self.eager(xb, yb)
        if self.graph is None and self.warm < self.WARMUP:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                loss = self.eager(xb, yb)
            torch.cuda.current_stream().wait_stream(side)
            self.warm += 1
            return loss
        if self.graph is None:
            self.graph = torch.cuda.CUDAGraph()
            self.opt.zero_grad(set_to_none=True)  # the graph's backward then writes fresh grads
            with torch.cuda.graph(self.graph):    # recorded only: the replay below runs it
                self.loss = self.step(self.x, self.y)
        self.x.copy_(xb)
        self.y.copy_(yb)
        self.graph.replay()
        return self.loss  # rewritten by the next replay, which the stream orders after its use
