"""A strict streaming tar reader for layer tars: headers parsed in one pass, data in big pieces.

:class:`TarReader` reads ustar, GNU (``L``/``K`` long names, base-256 numbers) and PAX
(``x``/``g`` records: path, linkpath, size, uid, gid, uname, gname, mtime, xattrs) from any
``read(n)`` callable, and hands an entry's data out as the pieces the source already holds (a
:class:`~lorry.rootfs.stream.LayerReader` gives views of its inflated chunks), so file bytes
are not copied between the inflater and ``write``. It is stricter than :mod:`tarfile`: a bad
checksum, a malformed number or PAX record, a truncated header or data block, a lone zero block
followed by data, or an extended header over the limit is an :class:`IntegrityError`, never
an early end (docs/unpack.md, docs/decisions.md "tar reader").
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator

from lorry.errors import IntegrityError, InvalidInputError

__all__ = [
    "BLK",
    "CHR",
    "DIR",
    "FIFO",
    "LNK",
    "REG",
    "SYM",
    "TarEntry",
    "TarReader",
]

#: Entry types as :class:`TarEntry.type` reports them (``REG`` covers ``0``, ``\\0`` and ``7``).
REG, LNK, SYM, CHR, BLK, DIR, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
_REGULAR = frozenset((b"0", b"\0", b"7"))
_HEADER_ONLY = frozenset((LNK, SYM, CHR, BLK, DIR, FIFO))
_PAX_TYPES = frozenset((b"x", b"X", b"g"))
_GNU_LONG = frozenset((b"L", b"K"))
_SPARSE = b"S"
_BLOCK = 512
_STEP = 1 << 20
_MAX_META = 32  # extended headers in a row before one entry
_ZERO_BLOCK = bytes(_BLOCK)
_POSIX_MAGIC = b"ustar\x00"
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_SIGNED = struct.Struct("148b8x356b")
_OCTAL = b"01234567"
_OCTAL_PAD = b"01234567 \0"
_NO_PAX: dict[str, str] = {}
_DECIMAL = re.compile(rb"[0-9]+")
_MTIME = re.compile(rb"-?[0-9]+(\.[0-9]*)?")


class TarEntry:
    """One tar member as the applier needs it; ``pax`` holds every PAX record that applies."""

    __slots__ = (
        "devmajor",
        "devminor",
        "gid",
        "gname",
        "linkname",
        "mode",
        "mtime",
        "name",
        "pax",
        "size",
        "type",
        "uid",
        "uname",
    )

    def __init__(  # noqa: PLR0917 - built once per header, positionally, on the hot path
        self,
        name: str,
        kind: bytes,
        mode: int,
        uid: int,
        gid: int,
        size: int,
        mtime: float,
        linkname: str,
        uname: str,
        gname: str,
        devmajor: int,
        devminor: int,
    ) -> None:
        self.name = name
        self.type = kind
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.mtime = mtime
        self.linkname = linkname
        self.uname = uname
        self.gname = gname
        self.devmajor = devmajor
        self.devminor = devminor
        self.pax: dict[str, str] = _NO_PAX

    def __repr__(self) -> str:
        return f"TarEntry({self.name!r}, type={self.type!r}, size={self.size})"


def _text(field: bytes) -> str:
    """A NUL-terminated header string (UTF-8, undecodable bytes kept as surrogates)."""
    end = field.find(0)
    return (field if end < 0 else field[:end]).decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """A numeric header field: octal digits (space/NUL padded) or GNU base-256."""
    if field[0] & 0x80:
        n = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:
            return n - (1 << (8 * (len(field) - 1)))
        if field[0] == 0x80:
            return n
        raise ValueError("bad base-256 marker")
    end = field.find(0)
    digits = (field if end < 0 else field[:end]).strip()
    if not digits:
        return 0
    if digits.translate(None, _OCTAL):
        raise ValueError(f"not octal: {digits!r}")
    return int(digits, 8)


def _pax_records(buf: bytes) -> Iterator[tuple[str, str]]:
    """The ``"LEN KEY=VALUE\\n"`` records of a PAX header; anything malformed is a ValueError."""
    pos, size = 0, len(buf)
    while pos < size:
        if buf[pos] == 0 and not buf[pos:].strip(b"\0"):
            return  # NUL padding after the records
        space = buf.find(b" ", pos, pos + 21)
        if space < 0 or not _DECIMAL.fullmatch(buf, pos, space):
            raise ValueError("malformed PAX record length")
        end = pos + int(buf[pos:space])
        if end > size or end <= space + 2 or buf[end - 1] != 0x0A:
            raise ValueError("PAX record length does not match its record")
        eq = buf.find(b"=", space + 1, end - 1)
        if eq <= space + 1:
            raise ValueError("PAX record without a keyword")
        key = buf[space + 1 : eq].decode("utf-8", "surrogateescape")
        yield key, buf[eq + 1 : end - 1].decode("utf-8", "surrogateescape")
        pos = end


class TarReader:
    """Iterate the entries of one tar stream; :meth:`data` reads the current entry's bytes.

    ``read(n)`` returns up to ``n`` bytes (any bytes-like object), empty only at the end of
    the stream. ``what`` names the layer in errors. Iteration stops at the end-of-archive
    marker; whatever follows it is left unread for the caller (DiffIDs cover it).
    """

    def __init__(self, read: Callable[[int], bytes | memoryview], what: str, max_header: int):
        self._read = read
        self._what = what
        self._max_header = max_header
        self._offset = 0  # bytes of the stream consumed so far
        self._left = 0  # data bytes of the current entry not yet read
        self._pad = 0  # padding after them
        self._entry: TarEntry | None = None
        self._global: dict[str, str] = {}
        self._global_bytes = 0

    # -- low level ---------------------------------------------------------------------------

    def _exact(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer only at the end of the stream."""
        first = self._read(n)
        got = len(first)
        if got == n or not got:
            self._offset += got
            return bytes(first)
        parts = [bytes(first)]
        while got < n:
            piece = self._read(n - got)
            if not piece:
                break
            parts.append(bytes(piece))
            got += len(piece)
        self._offset += got
        return b"".join(parts)

    def _skip(self, n: int) -> bool:
        """Discard ``n`` bytes; False when the stream ends first."""
        while n:
            piece = self._read(min(n, _STEP))
            if not piece:
                return False
            self._offset += len(piece)
            n -= len(piece)
        return True

    def _corrupt(self, detail: str, at: int | None = None) -> IntegrityError:
        where = self._offset if at is None else at
        return IntegrityError(f"{self._what}: corrupt or truncated tar: {detail} at offset {where}")

    def _where(self, name: str) -> str:
        return f"{self._what}: entry {name!r}"

    # -- data --------------------------------------------------------------------------------

    def data(self) -> Iterator[bytes | memoryview]:
        """The rest of the current entry's data, in pieces of up to 1 MiB as the source has them.

        A stream that ends early is an :class:`IntegrityError` naming the entry. A piece is
        valid until the next read from this reader.
        """
        read = self._read
        left = self._left
        while left:
            piece = read(left if left < _STEP else _STEP)
            n = len(piece)
            if not n:
                name = self._entry.name if self._entry is not None else ""
                raise IntegrityError(f"{self._where(name)}: truncated file data")
            left -= n
            self._left = left
            self._offset += n
            yield piece

    def _finish_entry(self) -> None:
        """Skip what the caller did not read of the current entry, and its padding."""
        if (self._left or self._pad) and not self._skip(self._left + self._pad):
            name = self._entry.name if self._entry is not None else ""
            raise IntegrityError(f"{self._where(name)}: truncated file data")
        self._left = self._pad = 0

    # -- headers -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[TarEntry]:
        while True:
            self._finish_entry()
            entry = self._next()
            if entry is None:
                return
            self._entry = entry
            yield entry

    def _block(self) -> bytes | None:
        """The next header block; None at the end-of-archive marker."""
        at = self._offset
        buf = self._exact(_BLOCK)
        if len(buf) == _BLOCK and buf != _ZERO_BLOCK:
            return buf
        if not buf:
            if at == 0:
                raise self._corrupt("empty stream", at)
            return None  # ends on an entry boundary without the marker, as tarfile and Go allow
        if len(buf) < _BLOCK:
            raise self._corrupt(f"truncated header ({len(buf)} of 512 bytes)", at)
        second = self._exact(_BLOCK)
        if second.count(0) != len(second):
            raise self._corrupt("a lone zero block followed by data", at)
        return None

    def _header(self, buf: bytes, at: int) -> TarEntry:
        """Parse one 512-byte header block (checksum first)."""
        (name, mode, uid, gid, size, mtime, chksum, kind, linkname,
         magic, _, uname, gname, devmajor, devminor, prefix) = _HEADER.unpack(buf)  # fmt: skip
        try:
            want = _number(chksum)
        except ValueError as exc:
            raise self._corrupt(f"bad header checksum field ({exc})", at) from None
        if want != sum(buf) - sum(chksum) + 256 and want != sum(_SIGNED.unpack(buf)) + 256:
            raise self._corrupt("bad header checksum", at)
        text = _text(name)
        try:
            if buf[100:148].translate(None, _OCTAL_PAD) or buf[329:345].translate(None, _OCTAL_PAD):
                numbers = [_number(f) for f in (mode, uid, gid, size, mtime, devmajor, devminor)]
            else:  # the usual case: octal digits, spaces and NULs only
                numbers = [
                    int(f.split(b"\0", 1)[0].strip() or b"0", 8)
                    for f in (mode, uid, gid, size, mtime, devmajor, devminor)
                ]
        except ValueError as exc:
            raise self._corrupt(f"bad numeric field in header of {text!r} ({exc})", at) from None
        if min(numbers[0], numbers[1], numbers[2], numbers[3], numbers[5], numbers[6]) < 0:
            raise self._corrupt(f"negative numeric field in header of {text!r}", at)
        if kind == b"\0" and text.endswith("/"):
            kind = DIR  # pre-POSIX tars mark a directory by a trailing slash only
        if kind == DIR:
            text = text.rstrip("/")
        if magic == _POSIX_MAGIC and prefix[0]:  # ustar splits a long name at a slash
            text = _text(prefix) + "/" + text
        return TarEntry(
            text, kind, numbers[0], numbers[1], numbers[2], numbers[3], numbers[4],
            _text(linkname), _text(uname), _text(gname), numbers[5], numbers[6],
        )  # fmt: skip

    def _meta(self, e: TarEntry, at: int) -> bytes:
        """The body of an extended header (PAX or GNU long name), bounded before it is read."""
        if e.size > self._max_header:
            raise IntegrityError(
                f"{self._what}: tar extended header of {e.size} bytes is too large "
                f"(limit {self._max_header}) at offset {at}"
            )
        body = self._exact(e.size)
        if len(body) < e.size or not self._skip(-e.size % _BLOCK):
            raise self._corrupt("truncated extended header", at)
        return body

    def _next(self) -> TarEntry | None:
        """Read headers up to and including the next entry's; None at the end of the archive."""
        local: dict[str, str] | None = None
        long_name: str | None = None
        long_link: str | None = None
        pending = 0
        for _ in range(_MAX_META + 1):
            at = self._offset
            buf = self._block()
            if buf is None:
                if pending:
                    raise self._corrupt("extended header without an entry", at)
                return None
            e = self._header(buf, at)
            kind = e.type
            if kind in _PAX_TYPES or kind in _GNU_LONG:
                body = self._meta(e, at)
                pending += 1
                if kind in _GNU_LONG:
                    text = _text(body)
                    if kind == b"L":
                        long_name = text
                    else:
                        long_link = text
                    continue
                try:
                    records = dict(_pax_records(body))
                except ValueError as exc:
                    raise self._corrupt(f"bad PAX header ({exc})", at) from None
                if kind == b"g":
                    self._global_bytes += e.size
                    if self._global_bytes > self._max_header:
                        raise IntegrityError(
                            f"{self._what}: tar global headers over {self._max_header} bytes"
                        )
                    self._global.update(records)
                else:
                    local = records if local is None else {**local, **records}
                continue
            if kind == _SPARSE:
                raise InvalidInputError(f"{self._where(e.name)}: GNU sparse file: not supported")
            if local is not None:
                self._apply_pax(e, {**self._global, **local}, at)
            elif self._global:
                self._apply_pax(e, dict(self._global), at)
            if long_name is not None:
                e.name = long_name.removesuffix("/") if e.type == DIR else long_name
            if long_link is not None:
                e.linkname = long_link
            self._left = 0 if e.type in _HEADER_ONLY else e.size
            self._pad = -self._left % _BLOCK
            if e.type in _REGULAR:
                e.type = REG
            return e
        raise self._corrupt(f"more than {_MAX_META} extended headers in a row")

    def _apply_pax(self, e: TarEntry, pax: dict[str, str], at: int) -> None:
        """Let PAX records override header fields; a malformed number is an error."""
        if any(k.startswith("GNU.sparse.") for k in pax):
            raise InvalidInputError(f"{self._where(e.name)}: GNU sparse file: not supported")
        e.pax = pax
        try:
            if path := pax.get("path"):
                e.name = path.rstrip("/")
            if link := pax.get("linkpath"):
                e.linkname = link
            if uname := pax.get("uname"):
                e.uname = uname
            if gname := pax.get("gname"):
                e.gname = gname
            for key in ("size", "uid", "gid"):
                if value := pax.get(key):
                    if not _DECIMAL.fullmatch(value.encode("utf-8", "surrogateescape")):
                        raise ValueError(f"PAX {key}={value!r}")
                    setattr(e, key, int(value))
            if mtime := pax.get("mtime"):
                if not _MTIME.fullmatch(mtime.encode("utf-8", "surrogateescape")):
                    raise ValueError(f"PAX mtime={mtime!r}")
                e.mtime = float(mtime)
        except ValueError as exc:
            raise self._corrupt(f"bad PAX header of {e.name!r} ({exc})", at) from None
