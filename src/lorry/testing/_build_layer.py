"""One deterministic layer blob: a tar stream generated, hashed and compressed on the fly.

The tar is never held in memory: headers and file contents are produced in order and pushed
through a :class:`_LayerSink`, which feeds the uncompressed bytes to the DiffID hash, compresses
them and feeds the result to the blob hash and the file. Same key and spec → same bytes:
mtimes, owners and modes are fixed, entries are sorted, the gzip header carries no mtime and no
file name, and all "random" bytes come from a ChaCha20 keystream keyed by the seed (about 4 GB/s,
forty times faster than ``random.randbytes``, which matters for the gigabyte 'large' preset).
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import secrets
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import zstandard
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from isal import isal_zlib

from lorry.digest import Digest

__all__ = ["FIXED_MTIME", "Compression", "LayerBlob", "LayerSpec", "write_layer"]

#: The mtime of every tar entry (2024-01-01T00:00:00Z), and the configs' ``created``.
FIXED_MTIME = 1704067200
#: Layer compression the builder can write.
Compression = Literal["gzip", "zstd", "none"]

_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)
_POOL_SIZE = 1 << 20
_FILES_PER_DIR = 50


@dataclass(frozen=True)
class LayerSpec:
    """What one generated layer holds: file count, total payload, content mix and extras.

    ``size`` is the approximate total of file contents in bytes (uncompressed);
    ``random_fraction`` of it is incompressible, the rest text-like. ``extras`` adds directory,
    symlink and hardlink entries, and in layers above the first a whiteout ``.wh.<name>`` and an
    opaque-directory marker ``.wh..wh..opq``.
    """

    files: int = 20
    size: int = 64 * 1024
    random_fraction: float = 0.5
    extras: bool = True


@dataclass(frozen=True)
class LayerBlob:
    """A written layer blob: its digest, DiffID and compressed size."""

    digest: Digest
    diff_id: Digest
    size: int


@dataclass(frozen=True)
class _Entry:
    """One tar entry to write; ``kind`` is ``dir``, ``text``, ``random``, ``symlink``, ``link``."""

    name: str
    kind: str
    size: int = 0
    target: str = ""


class _LayerSink:
    """Hash the uncompressed stream (DiffID), compress it, hash and write the result (digest)."""

    def __init__(self, out: IO[bytes], compression: Compression) -> None:
        self._out = out
        self._diff = hashlib.sha256()
        self._blob = hashlib.sha256()
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._gzip = None
        self._zstd = None
        if compression == "gzip":
            # wbits 31 = gzip wrapper with mtime 0 and no file name: deterministic.
            self._gzip = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
        elif compression == "zstd":
            self._zstd = zstandard.ZstdCompressor(level=1).compressobj()

    def write(self, data: bytes) -> None:
        """Queue bytes; they are processed in chunks of about 1 MiB."""
        self._pending.append(data)
        self._pending_len += len(data)
        if self._pending_len >= _CHUNK:
            self._process(b"".join(self._pending))
            self._pending.clear()
            self._pending_len = 0

    def _process(self, data: bytes) -> None:
        self._diff.update(data)
        if self._gzip is not None:
            self._emit(self._gzip.compress(data))
        elif self._zstd is not None:
            self._emit(self._zstd.compress(data))
        else:
            self._emit(data)

    def _emit(self, data: bytes) -> None:
        if data:
            self._blob.update(data)
            self._out.write(data)
            self.size += len(data)

    def close(self) -> tuple[Digest, Digest]:
        """Flush everything; return (blob digest, DiffID)."""
        self._process(b"".join(self._pending))
        self._pending.clear()
        if self._gzip is not None:
            self._emit(self._gzip.flush())
        elif self._zstd is not None:
            self._emit(self._zstd.flush())
        return Digest("sha256", self._blob.hexdigest()), Digest("sha256", self._diff.hexdigest())


@functools.lru_cache(maxsize=4)
def _text_pool(key: str) -> bytes:
    """About 1 MiB of text-like lines (a small vocabulary, key=value lines), doubled."""
    rng = random.Random(f"pool:{key}")
    words = [rng.randbytes(rng.randint(1, 5)).hex() for _ in range(400)]
    keys = ["name", "value", "path", "id", "size", "level", "user", "mode"]
    lines: list[str] = []
    total = 0
    while total < _POOL_SIZE:
        line = f"{rng.choice(keys)}={' '.join(rng.choices(words, k=rng.randint(3, 12)))}\n"
        lines.append(line)
        total += len(line)
    pool = "".join(lines).encode()[:_POOL_SIZE]
    return pool + pool  # doubled so any slice up to _POOL_SIZE wraps without copying


class _Content:
    """Deterministic file contents: a ChaCha20 keystream and slices of a text pool."""

    def __init__(self, key: str, layer_key: str, rng: random.Random) -> None:
        digest = hashlib.sha256(f"lorry.testing:{layer_key}".encode()).digest()
        cipher = Cipher(algorithms.ChaCha20(digest, bytes(16)), mode=None)
        self._stream = cipher.encryptor()
        self._rng = rng
        self._pool = _text_pool(key)

    def random(self, n: int) -> Iterator[bytes]:
        """``n`` incompressible bytes, in chunks."""
        while n > 0:
            k = min(n, _CHUNK)
            yield self._stream.update(_ZEROS[:k])
            n -= k

    def text(self, n: int) -> Iterator[bytes]:
        """``n`` text-like bytes: slices of the pool starting at random offsets."""
        while n > 0:
            k = min(n, 64 * 1024)
            start = self._rng.randrange(_POOL_SIZE)
            yield self._pool[start : start + k]
            n -= k


def _plan(spec: LayerSpec, index: int, rng: random.Random) -> list[_Entry]:
    """The entries of layer ``index``, sorted by name so that parents precede children."""
    top = f"l{index}"
    entries = [_Entry(f"{top}/", "dir")]
    weights = [rng.expovariate(1.0) for _ in range(spec.files)]
    scale = spec.size / (sum(weights) or 1.0)
    first_file = ""
    for k, weight in enumerate(weights):
        folder = f"{top}/d{k // _FILES_PER_DIR:03d}/"
        if k % _FILES_PER_DIR == 0:
            entries.append(_Entry(folder, "dir"))
        is_random = rng.random() < spec.random_fraction
        name = f"{folder}f{k:05d}.{'bin' if is_random else 'txt'}"
        entries.append(_Entry(name, "random" if is_random else "text", int(weight * scale)))
        first_file = first_file or name
    if spec.extras:
        entries.extend(_extras(index, top, first_file))
    entries.sort(key=lambda e: e.name)
    return entries


def _extras(index: int, top: str, first_file: str) -> list[_Entry]:
    """Directories, links, a whiteout and an opaque directory, as real layers have them."""
    out = [
        _Entry(f"{top}/victim.txt", "text", 100),
        _Entry("shared/", "dir"),
        _Entry(f"shared/from-l{index}.txt", "text", 200),
        _Entry(f"{top}/zz-symlink", "symlink", target="victim.txt"),
        _Entry(f"{top}/zz-dangling", "symlink", target="/no/such/file"),
    ]
    if first_file:
        out.append(_Entry(f"{top}/zz-hardlink", "link", target=first_file))
    if index == 0:
        out += [_Entry("etc/", "dir"), _Entry("etc/os-release", "text", 120)]
    else:
        out += [
            _Entry(f"l{index - 1}/.wh.victim.txt", "whiteout"),
            _Entry("shared/.wh..wh..opq", "whiteout"),
        ]
    return out


def _header(entry: _Entry) -> bytes:
    """The tar header block(s) of one entry, with fixed owner, mode and mtime."""
    info = tarfile.TarInfo(entry.name.rstrip("/"))
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o644
    if entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif entry.kind == "symlink":
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.target, 0o777
    elif entry.kind == "link":
        info.type, info.linkname = tarfile.LNKTYPE, entry.target
    else:
        info.size = entry.size
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _write_tar(sink: _LayerSink, entries: list[_Entry], content: _Content) -> None:
    """Stream every header and body, then the end-of-archive blocks padded to a record."""
    written = 0
    for entry in entries:
        header = _header(entry)
        sink.write(header)
        written += len(header)
        if entry.size:
            chunks = (
                content.random(entry.size) if entry.kind == "random" else content.text(entry.size)
            )
            for chunk in chunks:
                sink.write(chunk)
            pad = -entry.size % tarfile.BLOCKSIZE
            sink.write(bytes(pad))
            written += entry.size + pad
    written += 2 * tarfile.BLOCKSIZE
    sink.write(bytes(2 * tarfile.BLOCKSIZE + (-written % tarfile.RECORDSIZE)))


def write_layer(
    blobs_dir: Path, spec: LayerSpec, *, index: int, key: str, compression: Compression
) -> LayerBlob:
    """Generate layer ``index`` of the image keyed ``key`` into ``blobs_dir`` (named by digest)."""
    rng = random.Random(f"{key}:{index}")
    content = _Content(key, f"{key}:{index}", rng)
    entries = _plan(spec, index, rng)
    tmp = blobs_dir / f".tmp-layer-{os.getpid()}-{index}-{secrets.token_hex(6)}"
    try:
        with tmp.open("wb") as out:
            sink = _LayerSink(out, compression)
            _write_tar(sink, entries, content)
            digest, diff_id = sink.close()
        tmp.replace(blobs_dir / digest.encoded)
    finally:
        tmp.unlink(missing_ok=True)
    return LayerBlob(digest=digest, diff_id=diff_id, size=sink.size)
