"""Atomic file writes (a reader sees the old file or the new one, never half of one), and the
names cached files are stored under."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from nonvon.errors import DataError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON; a NaN or infinity anywhere in it is refused, naming its place,
    before anything is written (JSON has no such numbers)."""
    check_json_finite(obj, str(path))
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def non_finite_path(obj: Any, path: str = "") -> str | None:
    """Where in ``obj`` (dicts, lists, tuples) the first NaN or infinity is, e.g.
    ``rows[3].energy_per_inference_j``; ``None`` when there is none."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path or "the value")
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = ((f"[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for k, v in items:
        sub = f"{path}{k}" if str(k).startswith("[") else (f"{path}.{k}" if path else str(k))
        found = non_finite_path(v, sub)
        if found is not None:
            return found
    return None


def check_json_finite(obj: Any, where: str) -> None:
    """Refuse ``obj`` for JSON if it holds a NaN or infinity (:func:`non_finite_path`)."""
    found = non_finite_path(obj)
    if found is not None:
        from nonvon.errors import invalid

        raise invalid(f"{where}, {found}", "is NaN or infinite, which JSON cannot hold",
                      "a finite number", "find what produced it (a diverged training, an "
                      "overflowing preset entry) and fix that; nothing was written", DataError)


def fallback_dir() -> Path:
    """Where results that cannot be written where asked go instead:
    ``$NONVON_FALLBACK_DIR``, else ``<temp dir>/nonvon-unsaved``."""
    return Path(os.environ.get("NONVON_FALLBACK_DIR")
                or Path(tempfile.gettempdir()) / "nonvon-unsaved")


def check_writable(folder: str | os.PathLike, where: str) -> None:
    """Refuse, before any work, an output ``folder`` that cannot be written: an existing file,
    a path through a file, or a folder (or its nearest existing parent) where a file cannot
    be created. Probes with a temporary file that is removed at once; creates nothing."""
    from nonvon.errors import invalid

    folder = Path(folder)
    allowed = "a folder you can write to, new or existing"
    if folder.exists() and not folder.is_dir():
        raise invalid(f"{where} {folder}", "is a file, not a folder", allowed,
                      "give a folder, or move the file away")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise invalid(f"{where} {folder}", f"cannot be created: {probe} is a file", allowed,
                      "give a folder path that does not pass through a file")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".nonvon-write-check-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise invalid(f"{where} {folder}", f"is not writable ({probe}: {e.strerror or e})",
                      allowed, "choose a folder you can write to, or fix its permissions") from None


def atomic_savefig(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """Render a matplotlib figure in memory, then write it atomically (format from the suffix)."""
    import io

    buf = io.BytesIO()
    fmt = Path(path).suffix.lstrip(".") or "png"
    fig.savefig(buf, format=fmt, **savefig_kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def content_key(payload: Any) -> str:
    """A short stable name for what ``payload`` (JSON-able) describes: a cache file's name."""
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


# -- named tensors as safetensors bytes (a cached cell's trained parameters) ----------------
_TENSOR_META = "nonvon"  # one metadata key: safetensors writes several in a random order


def encode_tensors(tensors: dict[str, Any], *, shared: dict[str, str] | None = None) -> bytes:
    """``tensors`` (torch tensors or NumPy arrays by name) as ``.safetensors`` bytes, the
    same bytes for the same values. NumPy arrays come back as NumPy from :func:`decode_tensors`.
    ``shared`` names further tensors kept elsewhere (name -> content hash; see
    :func:`shared_tensor_refs`).

    Raises:
        TypeError: a value is neither a tensor nor a numeric array.
    """
    import numpy as np
    import torch
    from safetensors.torch import save

    out, numpy_names = {}, []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"state tensor names must be strings, got {name!r}")
        if isinstance(value, torch.Tensor):
            # a copy of its own: safetensors refuses tensors that share storage (tied weights)
            out[name] = value.detach().cpu().contiguous().clone()
            continue
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind in "USV":
            raise TypeError(f"state tensor {name!r} is a {type(value).__name__} of "
                            f"{array.dtype}, not numbers")
        out[name] = torch.from_numpy(np.ascontiguousarray(array).copy())
        numpy_names.append(name)
    meta = {"format": "nonvon-state/1", "numpy": sorted(numpy_names)}
    if shared:
        meta["shared"] = dict(sorted(shared.items()))
    return save(out, metadata={_TENSOR_META: json.dumps(meta, sort_keys=True)})


def shared_tensor_refs(data: bytes) -> dict[str, str]:
    """The tensors that :func:`encode_tensors` bytes name but keep elsewhere (name -> hash)."""
    try:
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(json.loads(data[8:8 + n])["__metadata__"][_TENSOR_META])
    except Exception as e:  # noqa: BLE001 - any damage reads as "not ours"
        raise ValueError(f"not a nonvon safetensors file ({type(e).__name__}: {e})") from None
    refs = meta.get("shared", {})
    if not isinstance(refs, dict) or not all(isinstance(v, str) for v in refs.values()):
        raise ValueError("not a nonvon safetensors file (malformed shared-tensor list)")
    return refs


def decode_tensors(data: bytes) -> dict[str, Any]:
    """The tensors of :func:`encode_tensors`' bytes (no code is run: safetensors holds data only).

    Raises:
        ValueError: the bytes are not a safetensors file nonvon wrote.
    """
    from safetensors.torch import load

    try:
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        meta = json.loads(header["__metadata__"][_TENSOR_META])
        tensors = load(data)
    except Exception as e:  # any damage (truncation, bad header) reads as "not ours"
        raise ValueError(f"not a nonvon safetensors file ({type(e).__name__}: {e})") from None
    for name in meta.get("numpy", ()):
        tensors[name] = tensors[name].numpy()
    return tensors
