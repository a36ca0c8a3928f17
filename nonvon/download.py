"""Downloading a data file with a SHA-256 check, never leaving half a file behind.

The file streams into a temp file in the destination folder and is renamed onto
``dest`` only once its checksum matches, so ``dest`` either does not exist or
holds the verified file. Network failures raise :class:`NetworkUnavailable`,
which callers catch to fall back to offline data.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from nonvon.errors import ConfigError, DataError

__all__ = ["NetworkUnavailable", "download", "sha256_of"]

_CHUNK = 1 << 16
_HEX64 = re.compile(r"[0-9a-f]{64}")


class NetworkUnavailable(DataError):
    """The server could not be reached or did not serve the file."""


def sha256_of(path: str | os.PathLike, *, decompressed: bool = False) -> str:
    """SHA-256 hex digest of a file, optionally of its gzip-decompressed content.

    Args:
        path: the file.
        decompressed: hash the content after gzip decompression. A file that
            is not gzip (no ``1f 8b`` magic) is hashed as it is, since its
            content already is the decompressed content.

    Returns:
        64 lowercase hex digits.

    Raises:
        DataError: ``decompressed`` is set and the gzip stream is corrupt.
    """
    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if decompressed and is_gzip else open(path, "rb")) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{str(path)!r} is not a valid gzip stream ({e})",
                        "delete the file and download it again") from None
    return h.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    *,
    decompressed: bool = False,
    progress: bool = True,
    timeout: float = 10.0,
) -> Path:
    """Download ``url`` to ``dest`` and verify its SHA-256 before it appears there.

    Args:
        url: what to fetch (``http``, ``https`` or ``file``).
        dest: where the verified file goes; its folder is created if needed.
        sha256: the expected digest, 64 hex digits.
        decompressed: ``sha256`` is the digest of the gzip-decompressed content
            (see :func:`sha256_of`). Mirrors sometimes recompress ``.gz``
            files, which changes the compressed bytes but not the content, so
            data sets are pinned by their decompressed digest. The file is
            saved as downloaded either way.
        progress: show a progress bar on stderr.
        timeout: seconds to wait for the connection and for each read.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: ``sha256`` is not 64 hex digits or ``timeout`` is not positive.
        NetworkUnavailable: the server could not be reached, timed out, answered
            with an HTTP error, or the connection broke mid-transfer.
        DataError: the downloaded content does not match ``sha256``.

    Example:
        >>> url = "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz"
        >>> digest = "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        >>> download(url, "t10k-labels-idx1-ubyte.gz", digest, decompressed=True)  # doctest: +SKIP
        PosixPath('t10k-labels-idx1-ubyte.gz')
    """
    expected = sha256.lower()
    if not _HEX64.fullmatch(expected):
        raise ConfigError(f"sha256 {sha256!r} is not a SHA-256 digest", "give 64 hex digits")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        raise ConfigError(f"cannot download {url!r}: not an http, https or file URL",
                          "give a full URL such as https://host/path/file.gz")
    if not timeout > 0:
        raise ConfigError(f"download timeout {timeout!r} must be positive")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temp file lives next to dest so the final rename stays on one file
    # system and is atomic.
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            raw_digest = _fetch(url, out, timeout=timeout, progress=progress, label=dest.name)
            out.flush()
            os.fsync(out.fileno())
        actual = sha256_of(tmp, decompressed=True) if decompressed else raw_digest
        if actual != expected:
            what = "the decompressed content of " if decompressed else ""
            raise DataError(
                f"checksum mismatch for {what}{url}: expected SHA-256 {expected}, "
                f"got {actual}",
                "the server sent a different or damaged file; retry later or use another mirror",
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _fetch(url: str, out: BinaryIO, *, timeout: float, progress: bool, label: str) -> str:
    """Stream ``url`` into ``out``; return the SHA-256 hex digest of the bytes received."""
    h = hashlib.sha256()
    fix = ("check the network connection, or provide the files locally "
           "(NONVON_DATA or --data-dir)")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            with _progress_bar(progress, label, total) as advance:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    advance(len(chunk))
    except urllib.error.HTTPError as e:
        raise NetworkUnavailable(f"cannot download {url}: HTTP {e.code} {e.reason}", fix) from None
    except urllib.error.URLError as e:
        raise NetworkUnavailable(f"cannot download {url}: {e.reason}", fix) from None
    # Failures after the connection opened (timeouts, resets, a short body)
    # come as these rather than URLError.
    except (TimeoutError, ConnectionError, ssl.SSLError, http.client.HTTPException) as e:
        raise NetworkUnavailable(f"download of {url} failed: {e!r}", fix) from None
    return h.hexdigest()


@contextmanager
def _progress_bar(enabled: bool, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n_bytes)``, drawing a rich progress bar on stderr when enabled."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    # stderr, so a bar never mixes into results printed on stdout.
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"downloading {label}", total=total)
        yield lambda n: bar.advance(task, n)
