"""Learners: encoded training hypervectors -> class hypervectors.

All learners keep real-valued class accumulators ``W`` (``C x D``) and differ in how
they fill them; the model decides what inference sees:

* ``"map"`` (bipolar MAP): the accumulators themselves, L2-normalized, compared with a
  bipolar query by cosine similarity (torchhd's ``Centroid`` model);
* ``"bsc"`` (binary spatter code): ``W > 0`` (ties broken by a fixed random vector),
  compared by Hamming distance. The retraining learners then use the *binarized* model
  in the loop, as QuantHD does (Imani et al., "QuantHD: A Quantization Framework for
  Hyperdimensional Computing", IEEE TCAD 2020, https://ieeexplore.ieee.org/document/8906150).

Learners:

* ``"centroid"``: bundling, ``W_c = sum of the class's hypervectors`` (torchhd
  ``Centroid.add``); for BSC the majority vote.
* ``"adapthd"``: iterative retraining in the style of AdaptHD (Imani et al., "AdaptHD:
  Adaptive Efficient Training for Brain-Inspired Hyperdimensional Computing", BioCAS
  2019, https://ieeexplore.ieee.org/document/8918974): starting from the class means,
  every sample whose true-class similarity does not beat the best other class by
  ``margin`` moves ``lr * h`` into its class and out of that rival, with the learning
  rate decaying linearly over the epochs. ``margin=0`` is torchhd's
  ``Centroid.add_adapt`` update; a positive margin keeps training on samples that are
  right but close, which is what lifts test accuracy (see the module tests).
* ``"onlinehd"``: the OnlineHD update (Hernandez-Cano et al., "OnlineHD: Robust,
  Efficient, and Single-Pass Online Learning Using Hyperdimensional System", DATE 2021,
  https://ieeexplore.ieee.org/abstract/document/9474107), torchhd's
  ``Centroid.add_online``: a mispredicted sample adds ``lr (1 - s_y) h`` to its class and
  ``lr (s_p - 1) h`` to the predicted one.

The query similarity ``s`` is the cosine between the bipolar query and the class
vector in both models (for BSC, ``1 - 2 * hamming / D``).
"""

from __future__ import annotations

import torch

from nonvon.progress import progress_bar

__all__ = ["LEARNERS", "MODELS", "train_class_vectors", "adapthd_step", "onlinehd_step",
           "binarize", "bipolar", "normalize", "centroid_sums"]

LEARNERS = ("centroid", "adapthd", "onlinehd")
MODELS = ("map", "bsc")


def bipolar(bits: torch.Tensor) -> torch.Tensor:
    """bool bits -> float32 {-1, +1} (bit 1 = +1)."""
    return bits.to(torch.float32) * 2 - 1


def centroid_sums(bits: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``W_c = sum_{i: y_i = c} h_i`` over bipolar hypervectors (torchhd ``Centroid.add``)."""
    w = torch.zeros((n_classes, bits.shape[1]), dtype=torch.float32)
    for i in range(0, len(bits), 4096):
        w.index_add_(0, y[i:i + 4096], bipolar(bits[i:i + 4096]))
    return w


def binarize(w: torch.Tensor, tiebreak: torch.Tensor) -> torch.Tensor:
    """BSC class vectors: ``w > 0``, and ``tiebreak`` where ``w == 0`` exactly."""
    return (w > 0) | ((w == 0) & tiebreak)


def normalize(w: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (an all-zero row stays zero)."""
    return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _similarity_matrix(w: torch.Tensor, model: str, tiebreak: torch.Tensor) -> torch.Tensor:
    """Class vectors as inference sees them, scaled so ``h @ M.T`` is a cosine."""
    d = w.shape[1]
    if model == "bsc":
        return bipolar(binarize(w, tiebreak)) / d
    return normalize(w) / d ** 0.5


def adapthd_step(w: torch.Tensor, h: torch.Tensor, t: torch.Tensor, *, rate: float,
                 margin: float, model: str, tiebreak: torch.Tensor) -> int:
    """One AdaptHD-style update of ``w`` in place on a batch; returns the batch's errors.

    Args:
        w: ``(C, D)`` float32 accumulators (updated in place).
        h: ``(B, D)`` bipolar float32 queries.
        t: ``(B,)`` int64 labels.
        rate: learning rate of this epoch.
        margin: cosine margin the true class must win by (0: update on mistakes only,
            torchhd's ``Centroid.add_adapt``).
        model, tiebreak: which class vectors the similarity uses (see module doc).
    """
    s = h @ _similarity_matrix(w, model, tiebreak).T
    s_true = s.gather(1, t[:, None])
    rival_s, rival = s.scatter(1, t[:, None], -torch.inf).max(1, keepdim=True)
    upd = (rival_s > s_true - margin).flatten() if margin else (rival_s > s_true).flatten()
    if upd.any():
        w.index_add_(0, t[upd], h[upd], alpha=rate)
        w.index_add_(0, rival[upd, 0], h[upd], alpha=-rate)
    return int((rival_s > s_true).sum())


def onlinehd_step(w: torch.Tensor, h: torch.Tensor, t: torch.Tensor, *, rate: float, model: str,
                  tiebreak: torch.Tensor) -> int:
    """One OnlineHD update of ``w`` in place (torchhd ``Centroid.add_online``); returns errors."""
    s = h @ _similarity_matrix(w, model, tiebreak).T
    pred = s.argmax(1)
    wrong = pred != t
    if wrong.any():
        hw = h[wrong]
        a_true = 1.0 - s.gather(1, t[:, None])[wrong]
        a_pred = s.gather(1, pred[:, None])[wrong] - 1.0
        w.index_add_(0, t[wrong], a_true * hw, alpha=rate)
        w.index_add_(0, pred[wrong], a_pred * hw, alpha=rate)
    return int(wrong.sum())


def train_class_vectors(bits: torch.Tensor, y: torch.Tensor, n_classes: int, *, model: str,
                        learner: str, epochs: int = 20, lr: float = 0.05, margin: float = 0.02,
                        batch_size: int = 256, tiebreak: torch.Tensor, seed: int = 0,
                        progress: bool = False, label: str = "hdc retrain") -> torch.Tensor:
    """Train class accumulators on encoded samples.

    Args:
        bits: ``(N, D)`` bool encoded training hypervectors.
        y: ``(N,)`` int64 labels in ``0 .. n_classes - 1``.
        n_classes: ``C``.
        model: ``"map"`` or ``"bsc"`` (which class vectors the retraining loop uses).
        learner: ``"centroid"``, ``"adapthd"`` or ``"onlinehd"``.
        epochs, lr, margin, batch_size: retraining budget (ignored by ``"centroid"``).
        tiebreak: ``(D,)`` bool, the BSC tie-break vector.
        seed: seeds the sample order.
        progress: show a progress bar over the epochs.

    Returns:
        ``(C, D)`` float32 accumulators ``W``.
    """
    w = centroid_sums(bits, y, n_classes)
    if learner == "centroid":
        return w
    counts = torch.bincount(y, minlength=n_classes).clamp_min(1).to(torch.float32)
    w /= counts[:, None]  # start from class means, so lr is relative to a +-1 hypervector
    gen = torch.Generator().manual_seed(int(seed))
    n = len(y)
    with progress_bar(progress) as bar:
        task = bar.add_task(label, total=epochs, status="")
        for epoch in range(epochs):
            rate = lr * (1 - epoch / epochs)
            order = torch.randperm(n, generator=gen)
            errors = 0
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                h, t = bipolar(bits[idx]), y[idx]
                if learner == "adapthd":
                    errors += adapthd_step(w, h, t, rate=rate, margin=margin, model=model,
                                           tiebreak=tiebreak)
                else:
                    errors += onlinehd_step(w, h, t, rate=rate, model=model, tiebreak=tiebreak)
            bar.update(task, advance=1, status=f"train error {errors / n:.4f}")
    return w
