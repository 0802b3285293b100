"""The streaming tar reader: same entries and data as tarfile on valid archives, strict on bad."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lorry.errors import IntegrityError, InvalidInputError, LorryError
from lorry.rootfs.stream import LayerReader
from lorry.rootfs.tarstream import REG, TarReader

_FORMATS = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}
_OCTAL_LIMIT = {8: 8**7, 12: 8**11}  # ustar's octal fields: 7 and 11 digits


def _source(data: bytes, step: int) -> Callable[[int], bytes]:
    """A read(n) over ``data`` that never returns more than ``step`` bytes at once."""
    stream = io.BytesIO(data)
    return lambda n: stream.read(min(n, step))


def _ours(data: bytes, step: int = 1 << 20, max_header: int = 1 << 20) -> list[dict[str, Any]]:
    reader = TarReader(_source(data, step), "layer 0", max_header)
    out = []
    for e in reader:
        out.append(
            {
                "name": e.name,
                "type": e.type,
                "mode": e.mode,
                "uid": e.uid,
                "gid": e.gid,
                "size": e.size,
                "mtime": e.mtime,
                "linkname": e.linkname,
                "uname": e.uname,
                "gname": e.gname,
                "dev": (e.devmajor, e.devminor),
                "pax": dict(e.pax),
                "data": b"".join(bytes(p) for p in reader.data()) if e.type == REG else b"",
            }
        )
    return out


def _theirs(data: bytes) -> list[dict[str, Any]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isreg() else None
            out.append(
                {
                    "name": m.name,
                    "type": REG if m.isreg() else m.type,
                    "mode": m.mode,
                    "uid": m.uid,
                    "gid": m.gid,
                    "size": m.size,
                    "mtime": m.mtime,
                    "linkname": m.linkname,
                    "uname": m.uname,
                    "gname": m.gname,
                    "dev": (m.devmajor, m.devminor),
                    "pax": dict(m.pax_headers),
                    "data": f.read() if f is not None else b"",
                }
            )
    return out


_name_char = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/")
_component = st.text(_name_char, min_size=1, max_size=40).filter(lambda c: c not in (".", ".."))
_name = st.one_of(
    st.lists(_component, min_size=1, max_size=4).map("/".join),
    st.lists(_component, min_size=4, max_size=12).map("/".join),  # often > 100, > 255 chars
    st.integers(101, 400).map(lambda n: "d/" * 40 + "x" * n),  # ustar's split cannot hold it
)


@st.composite
def _entry(draw: st.DrawFn, fmt: str) -> tuple[tarfile.TarInfo, bytes]:
    wide = fmt != "ustar"
    info = tarfile.TarInfo(draw(_name))
    kind = draw(st.sampled_from("ffffdslhcbp"))
    info.mode = draw(st.integers(0, 0o7777))
    ids = st.integers(0, (1 << 40) if wide else _OCTAL_LIMIT[8] - 1)
    info.uid, info.gid = draw(ids), draw(ids)
    info.mtime = draw(
        st.integers(-(1 << 34) if fmt == "gnu" else 0, (1 << 40) if wide else _OCTAL_LIMIT[12] - 1)
        | (st.floats(0, 1e12).map(lambda t: round(t, 3)) if fmt == "pax" else st.just(0))
    )
    info.uname = draw(st.text(_name_char, max_size=12)) if wide else "user"
    info.gname = draw(st.text(_name_char, max_size=12)) if wide else "group"
    if fmt == "pax" and draw(st.booleans()):
        info.pax_headers = {
            f"SCHILY.xattr.user.{draw(_component)}": draw(st.text(_name_char, max_size=20)),
            "LIBARCHIVE.xattr.user.b64": "aGVsbG8=",
        }
    data = b""
    if kind == "f":
        data = draw(st.binary(max_size=3000) | st.integers(0, 3 << 20).map(bytes))
        info.size = len(data)
    elif kind == "d":
        info.type = tarfile.DIRTYPE
    elif kind in "sl":
        info.type = tarfile.SYMTYPE if kind == "s" else tarfile.LNKTYPE
        info.linkname = draw(_name)
    elif kind in "cb":
        info.type = tarfile.CHRTYPE if kind == "c" else tarfile.BLKTYPE
        info.devmajor = draw(st.integers(0, _OCTAL_LIMIT[8] - 1))
        info.devminor = draw(st.integers(0, _OCTAL_LIMIT[8] - 1))
    else:
        info.type = tarfile.FIFOTYPE
    return info, data


@st.composite
def _archive(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(sorted(_FORMATS)))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=_FORMATS[fmt]) as tar:
        for info, data in draw(st.lists(_entry(fmt), min_size=1, max_size=6)):
            try:
                tar.addfile(info, io.BytesIO(data))
            except ValueError:  # a name or number this format cannot hold: not written
                continue
    return buf.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_archive(), step=st.sampled_from([1, 7, 511, 512, 513, 4096, 1 << 20]))
def test_same_entries_and_data_as_tarfile(data: bytes, step: int) -> None:
    assert _ours(data, step) == _theirs(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_archive(), where=st.integers(0), value=st.integers(0, 255))
def test_a_changed_byte_is_read_or_refused(data: bytes, where: int, value: int) -> None:
    where %= len(data)
    with contextlib.suppress(LorryError):  # anything else (ValueError, IndexError) fails
        _ours(data[:where] + bytes([value]) + data[where + 1 :])


@settings(max_examples=50, deadline=None)
@given(data=_archive(), cut=st.integers(1))
def test_a_cut_archive_is_refused_or_ends_on_an_entry_boundary(data: bytes, cut: int) -> None:
    cut %= len(data)
    try:
        got = _ours(data[:cut])
    except IntegrityError:
        return
    assert got == _ours(data)[: len(got)]  # only a cut between entries reads (tarfile, Go too)


# -- hand-made archives ------------------------------------------------------------------------


def _tar(*entries: tuple[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _patch(data: bytes, offset: int, value: bytes, *, header: int = 0) -> bytes:
    """``data`` with ``value`` written at ``offset`` and the checksum of the header at
    ``header`` recomputed, so only the change itself is wrong."""
    out = bytearray(data)
    out[offset : offset + len(value)] = value
    block = out[header : header + 512]
    block[148:156] = b" " * 8
    out[header + 148 : header + 156] = b"%06o\0 " % sum(block)
    return bytes(out)


def _refused(data: bytes, match: str, max_header: int = 1 << 20) -> None:
    with pytest.raises(IntegrityError, match=match):
        _ours(data, max_header=max_header)


def test_bad_checksum() -> None:
    data = bytearray(_tar(("a", b"1")))
    data[0] = ord("b")
    _refused(bytes(data), "bad header checksum")


def test_bad_checksum_of_a_later_header_is_not_an_early_end() -> None:
    data = bytearray(_tar(("a", b"1"), ("b", b"2")))
    data[1024] = ord("c")  # tarfile stops here silently
    _refused(bytes(data), "bad header checksum at offset 1024")


def test_truncated_header() -> None:
    _refused(_tar(("a", b"1"))[:300], "truncated header")


def test_truncated_data_names_layer_and_entry() -> None:
    with pytest.raises(IntegrityError, match=r"layer 0: entry 'big': truncated file data"):
        _ours(_tar(("big", b"x" * 5000))[:2000])


def test_truncated_padding() -> None:
    _refused(_tar(("a", b"x" * 10))[:600], "truncated file data")


def test_empty_stream() -> None:
    _refused(b"", "empty stream")


def test_oversized_pax_header_refused_before_reading() -> None:
    _refused(_tar(("p" * 5000, b"1")), "extended header of .* too large", max_header=512)


def test_oversized_gnu_long_name_refused() -> None:
    _refused(_tar(("p" * 5000, b"1"), fmt=tarfile.GNU_FORMAT), "too large", max_header=512)


@pytest.mark.parametrize(
    ("offset", "value"),
    [
        (100, b"12x4567\0"),  # mode: not octal
        (108, b"-000001\0"),  # uid: a sign
        (116, b"0_00001\0"),  # gid: what int() would accept
        (124, b"\xff" + b"\xff" * 11),  # size: negative base-256
        (108, b"\xff" * 8),  # uid: negative base-256
        (124, b"\x81" + bytes(11)),  # size: not a base-256 marker
        (136, b"9" * 11 + b"\0"),  # mtime: not octal
    ],
)
def test_garbage_numeric_fields(offset: int, value: bytes) -> None:
    _refused(_patch(_tar(("a", b"1"), fmt=tarfile.USTAR_FORMAT), offset, value), "numeric field")


def test_base256_size_is_read() -> None:
    data = _patch(_tar(("a", b"hello"), fmt=tarfile.GNU_FORMAT), 124, b"\x80" + (5).to_bytes(11))
    assert _ours(data)[0]["data"] == b"hello"


def _pax(records: bytes, body: bytes = b"1") -> bytes:
    """A PAX header with exactly ``records`` for an entry ``a`` holding ``body``."""
    meta = tarfile.TarInfo("././@PaxHeader")
    meta.type, meta.size = tarfile.XHDTYPE, len(records)
    info = tarfile.TarInfo("a")
    info.size = len(body)
    pad = lambda n: b"\0" * (-n % 512)  # noqa: E731
    return (
        meta.tobuf(tarfile.USTAR_FORMAT) + records + pad(len(records))
        + info.tobuf(tarfile.USTAR_FORMAT) + body + pad(len(body)) + bytes(1024)
    )  # fmt: skip


def test_pax_records_are_read() -> None:
    got = _ours(_pax(b"11 path=b/\n13 size=0005\n", b"hello"))
    assert (got[0]["name"], got[0]["data"]) == ("b", b"hello")


@pytest.mark.parametrize(
    "records",
    [
        b"99 path=b\n",  # length beyond the header
        b"9 path=bb\n",  # length short of the newline
        b"x path=b\n",  # length not a number
        b"8 =value\n",  # no keyword
        b"12 size=-10\n",  # negative size: tarfile would read 0 bytes of data
        b"12 size=abc\n",  # tarfile would read 0
        b"11 uid=1e3\n",
        b"13 mtime=nan\n",
    ],
)
def test_bad_pax_records(records: bytes) -> None:
    _refused(_pax(records), "bad PAX header")


def test_lone_zero_block_followed_by_data() -> None:
    data = _tar(("a", b"1"))
    _refused(data[:1024] + bytes(512) + data[:512], "lone zero block")


def test_lone_zero_block_at_the_end_ends_the_archive() -> None:
    assert [e["name"] for e in _ours(_tar(("a", b"1"))[:1536])] == ["a"]


def test_data_after_the_end_marker_is_left_for_the_caller() -> None:
    data = _tar(("a", b"1"))
    stream = io.BytesIO(data + b"trailing")
    assert [e.name for e in TarReader(stream.read, "layer 0", 1 << 20)] == ["a"]
    assert stream.read().endswith(b"trailing")


def test_extended_header_without_an_entry() -> None:
    data = _pax(b"11 path=b/\n")
    _refused(data[:1024] + bytes(1024), "extended header without an entry")


def test_too_many_extended_headers_in_a_row() -> None:
    one = _pax(b"11 path=b/\n")[:1024]
    _refused(one * 40 + _tar(("a", b"1")), "extended headers in a row")


def test_gnu_sparse_is_refused() -> None:
    data = _patch(_tar(("a", b"1"), fmt=tarfile.GNU_FORMAT), 156, b"S")
    with pytest.raises(InvalidInputError, match="sparse"):
        _ours(data)


def test_skipped_data_is_not_yielded_as_headers() -> None:
    inner = _tar(("evil", b"pwn"))  # a tar inside a file's data
    assert [e["name"] for e in _ours(_tar(("a.tar", inner), ("b", b"2")))] == ["a.tar", "b"]
    reader = TarReader(io.BytesIO(_tar(("a.tar", inner), ("b", b"2"))).read, "l", 1 << 20)
    assert [e.name for e in reader] == ["a.tar", "b"]  # data never read: skipped


@pytest.mark.parametrize("step", [1, 100, 512, 7000])
def test_layer_reader_read_and_read1(step: int) -> None:
    data = bytes(range(256)) * 5000
    chunks = iter([data[i : i + step] for i in range(0, len(data), step)])
    reader = LayerReader(chunks, "none", "layer 0")
    got = [reader.read(3), bytes(reader.read1(10_000)), reader.read(70_000), reader.read()]
    assert b"".join(got) == data
    assert reader.read(5) == b""
    assert reader.diff_id()[1] == len(data)
