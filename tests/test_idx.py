"""IDX reading and writing: round trips, the byte layout, and every kind of damage."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from nonvon.errors import ConfigError, DataError
from nonvon.idx import parse_idx, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = [(7,), (3, 5), (4, 28, 28), (2, 3, 4, 5)]


def _idx_bytes(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file built by hand from the format description, independent of write_idx."""
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip(tmp_path, dtype, shape, suffix):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        a = rng.standard_normal(shape).astype(dtype)
    path = write_idx(tmp_path / f"a-idx{len(shape)}{suffix}", a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.shape == shape
    np.testing.assert_array_equal(a, b)
    assert b.flags.writeable
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_gz_name_is_compressed_and_plain_name_is_not(tmp_path):
    a = np.zeros((10, 10), np.uint8)
    assert write_idx(tmp_path / "a.gz", a).read_bytes()[:2] == b"\x1f\x8b"
    assert write_idx(tmp_path / "a", a).read_bytes()[:4] == b"\x00\x00\x08\x02"


def test_byte_layout_is_big_endian(tmp_path):
    path = write_idx(tmp_path / "a", np.array([1, -2], dtype=np.int16))
    assert path.read_bytes() == _idx_bytes(0x0B, (2,), b"\x00\x01\xff\xfe")


def test_reads_hand_built_file(tmp_path):
    path = tmp_path / "h.idx"
    path.write_bytes(_idx_bytes(0x0D, (2, 2), struct.pack(">4f", 0.5, -1.0, 2.0, 3.25)))
    np.testing.assert_array_equal(read_idx(path), np.array([[0.5, -1.0], [2.0, 3.25]], np.float32))


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    raw = _idx_bytes(0x08, (3,), b"\x01\x02\x03")
    (tmp_path / "plain.gz").write_bytes(raw)  # a .gz a server already decompressed
    (tmp_path / "packed").write_bytes(gzip.compress(raw))
    for name in ("plain.gz", "packed"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), [1, 2, 3])


@pytest.mark.parametrize(
    "header",
    [
        b"\x01\x00\x08\x01",  # first byte not zero
        b"\x00\x01\x08\x01",  # second byte not zero
        b"\x00\x00\x0a\x01",  # unknown type code
        b"\x00\x00\x08\x00",  # zero dimensions
        b"\x00\x00\x08\x05",  # five dimensions
        b"PK\x03\x04",  # a zip file
    ],
    ids=["byte0", "byte1", "type", "ndim0", "ndim5", "zip"],
)
def test_bad_magic(tmp_path, header):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(header + b"\x00" * 64)
    with pytest.raises(DataError, match="bad magic number") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_truncated_payload(tmp_path):
    path = tmp_path / "t-idx3-ubyte"
    path.write_bytes(_idx_bytes(0x08, (10, 28, 28), bytes(7839)))
    with pytest.raises(DataError, match="truncated") as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "7840" in msg and "7839" in msg and "download it again" in msg


def test_truncated_header(tmp_path):
    path = tmp_path / "t"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x0a")  # says 3 dims, gives one
    with pytest.raises(DataError, match="header needs 16 bytes, found 8"):
        read_idx(path)


@pytest.mark.parametrize("data", [b"", b"\x00\x00"], ids=["empty", "two-bytes"])
def test_too_short_for_a_header(tmp_path, data):
    path = tmp_path / "short"
    path.write_bytes(data)
    with pytest.raises(DataError, match="too short for a header"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long-idx1-ubyte"
    path.write_bytes(_idx_bytes(0x0C, (3,), bytes(12) + b"junk"))
    with pytest.raises(DataError, match="longer than its header says") as e:
        read_idx(path)
    assert "needs 12 payload bytes, found 16" in str(e.value)


@pytest.mark.parametrize("damage", ["garbage", "cut", "bitflip"])
def test_corrupt_gzip(tmp_path, damage):
    packed = gzip.compress(_idx_bytes(0x08, (1000,), bytes(range(256)) * 3 + bytes(232)))
    if damage == "garbage":
        packed = packed[:10] + b"\xff" * 40
    elif damage == "cut":
        packed = packed[: len(packed) // 2]
    else:  # damage the stored CRC, so only the integrity check can notice
        packed = packed[:-8] + bytes([packed[-8] ^ 0xFF]) + packed[-7:]
    path = tmp_path / "c-idx1-ubyte.gz"
    path.write_bytes(packed)
    with pytest.raises(DataError, match="not a valid gzip stream") as e:
        read_idx(path)
    assert str(path) in str(e.value) and "download it again" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope")


def test_parse_idx_names_the_source():
    with pytest.raises(DataError, match="'mem'"):
        parse_idx(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01", "mem")


@pytest.mark.parametrize("a", [np.zeros(3, bool), np.zeros(3, np.uint16), np.zeros(3, np.int64),
                               np.zeros(3, np.complex64)], ids=lambda a: a.dtype.name)
def test_write_rejects_unstorable_dtype(tmp_path, a):
    with pytest.raises(ConfigError, match="cannot store dtype"):
        write_idx(tmp_path / "x", a)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("shape", [(), (1, 1, 1, 1, 1)], ids=["0d", "5d"])
def test_write_rejects_bad_rank(tmp_path, shape):
    with pytest.raises(ConfigError, match="1 to 4 dimensions"):
        write_idx(tmp_path / "x", np.zeros(shape, np.uint8))


def test_write_accepts_big_endian_input(tmp_path):
    a = np.arange(5, dtype=">i4")
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "x", a)), np.arange(5))


def test_gzip_output_is_reproducible(tmp_path):
    a = np.arange(100, dtype=np.uint8)
    first = write_idx(tmp_path / "a.gz", a).read_bytes()
    assert write_idx(tmp_path / "b.gz", a).read_bytes() == first
