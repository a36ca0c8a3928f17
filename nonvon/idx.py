"""Reading and writing IDX files, the array format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian ``uint32`` per dimension, then the array
elements in row-major order, big-endian. Format described at
http://yann.lecun.com/exdb/mnist/ ("THE IDX FILE FORMAT").

Files may be gzip-compressed; :func:`read_idx` recognises gzip by its content,
not by the file name, so a ``.gz`` file that a server already decompressed
still reads.

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a-idx2-ubyte.gz")
    >>> _ = write_idx(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> read_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from nonvon._io import atomic_write_bytes
from nonvon.errors import ConfigError, DataError

__all__ = ["IDX_DTYPES", "parse_idx", "read_idx", "read_idx_bytes", "write_idx"]

#: IDX type code -> element dtype (big-endian, as stored in the file).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_MAX_DIMS = 4
_GZIP_MAGIC = b"\x1f\x8b"
_REFETCH = "delete the file and download it again (or copy it again from its source)"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, into a native-endian array.

    Args:
        path: the file, e.g. ``"mnist/train-images-idx3-ubyte.gz"``.

    Returns:
        A writable array whose shape is the file's dimensions and whose dtype
        is the native-endian version of the file's type (``uint8`` for MNIST).

    Raises:
        DataError: the file is missing or unreadable, the gzip stream is
            corrupt, the magic number is wrong, or the payload is shorter or
            longer than the dimensions say.
    """
    return parse_idx(read_idx_bytes(path), str(path))


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The uncompressed bytes of an IDX file, decompressing gzip when present.

    Callers that pin files by the SHA-256 of their uncompressed content hash
    these bytes, then decode them with :func:`parse_idx`.

    Raises:
        DataError: the file is missing or unreadable, or its gzip stream is corrupt.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file {str(path)!r} does not exist",
                        "check the path or download the data set") from None
    except OSError as e:
        raise DataError(f"cannot read IDX file {str(path)!r}: {e.strerror or e}",
                        "check the file's permissions") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    # A damaged stream surfaces as BadGzipFile (an OSError), EOFError when cut
    # short, or zlib.error from inside the deflate data.
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"IDX file {str(path)!r} is not a valid gzip stream ({e})",
                        _REFETCH) from None


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an uncompressed IDX file.

    Args:
        raw: the whole file, header included.
        name: what to call the data in error messages, usually its path.

    Returns:
        A writable native-endian array (see :func:`read_idx`).

    Raises:
        DataError: bad magic number, or a payload size that does not match the header.
    """
    if len(raw) < 4:
        raise DataError(f"IDX file {name!r} is {len(raw)} bytes long, too short for a header",
                        _REFETCH)
    zero, code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES or not 1 <= ndim <= _MAX_DIMS:
        codes = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(
            f"IDX file {name!r} has a bad magic number 0x{raw[:4].hex().upper()} (expected two "
            f"zero bytes, a type code among {codes} and 1..{_MAX_DIMS} dimensions)",
            f"make sure this is an IDX file; if it is, {_REFETCH}",
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"IDX file {name!r} is truncated: its header needs {header} bytes, found {len(raw)}",
            _REFETCH,
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise DataError(
            f"IDX file {name!r} is {what}: shape {dims} of {dtype.newbyteorder('=').name} needs "
            f"{expected} payload bytes, found {found}",
            _REFETCH,
        )
    # astype to native order copies, which also makes the result writable.
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(
        dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, atomically; gzip it when the name ends in ``.gz``.

    Args:
        path: destination file.
        array: 1 to 4 dimensions, dtype ``uint8``, ``int8``, ``int16``,
            ``int32``, ``float32`` or ``float64``.

    Returns:
        The path written.

    Raises:
        ConfigError: the dtype or the number of dimensions cannot be stored in IDX.
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        names = ", ".join(dt.newbyteorder("=").name for dt in IDX_DTYPES.values())
        raise ConfigError(f"IDX cannot store dtype {array.dtype}", f"convert to one of: {names}")
    if not 1 <= array.ndim <= _MAX_DIMS:
        raise ConfigError(f"IDX stores 1 to {_MAX_DIMS} dimensions, got shape {array.shape}",
                          "reshape the array")
    if any(d >= 2**32 for d in array.shape):
        raise ConfigError(f"IDX dimensions must be below 2**32, got shape {array.shape}")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if str(path).endswith(".gz"):
        # mtime=0 keeps the output byte-identical across runs, so fixtures hash stably.
        data = gzip.compress(data, mtime=0)
    return atomic_write_bytes(path, data)
