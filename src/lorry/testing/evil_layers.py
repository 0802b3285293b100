"""Malicious and tricky layer tars, each with the tree or error it must produce (docs/unpack.md)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Case", "cases", "layer_tar", "tree_of"]

#: An entry: (kind, name, payload): kind f=file, d=dir, l=symlink, h=hardlink, p=fifo, raw=bytes.
Entry = tuple[str, str, "bytes | str"]
Tree = dict[str, tuple[str, "bytes | str"]]


@dataclass(frozen=True)
class Case:
    """One case: layers (lists of entries or raw tar bytes), then an expected tree or error."""

    name: str
    layers: list[list[Entry] | bytes]
    tree: Tree | None = None
    error: str | None = None
    modes: dict[str, int] = field(default_factory=dict)


def layer_tar(entries: list[Entry]) -> bytes:
    """The tar bytes of ``entries`` (GNU/PAX as tarfile writes them)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if kind == "f":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind.startswith("f"):  # "f4755": a file with that octal mode
                info.size, info.mode = 1, int(kind[1:], 8)
                tar.addfile(info, io.BytesIO(b"x"))
                continue
            info.type = {"d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE,
                         "p": tarfile.FIFOTYPE}[kind]  # fmt: skip
            info.mode = 0o755 if kind == "d" else 0o644
            info.linkname = str(payload)
            tar.addfile(info)
    return buf.getvalue()


def tree_of(case_layers: list[list[Entry] | bytes]) -> list[bytes]:
    """Every layer of a case as tar bytes."""
    return [x if isinstance(x, bytes) else layer_tar(x) for x in case_layers]


_ESCAPES = ["../x", "a/../../x", "./../x", "a/b/../../../x", "/../x"]
_LINKS = ["/", "/tmp", "..", "../..", "../outside", "/etc", "a/../..", "loop", "chain"]


def _refuse() -> Iterator[Case]:
    for i, bad in enumerate(_ESCAPES):
        yield Case(f"dotdot-file-{i}", [[("f", bad, b"pwn")]], error="'..'")
        yield Case(f"dotdot-dir-{i}", [[("d", bad, "")]], error="'..'")
        yield Case(f"dotdot-symlink-name-{i}", [[("l", bad, "/")]], error="'..'")
        yield Case(f"dotdot-fifo-{i}", [[("p", bad, "")]], error="'..'")
        yield Case(f"dotdot-hardlink-target-{i}", [[("h", "ok", bad)]], error="'..'")
        yield Case(f"dotdot-whiteout-{i}", [[("f", bad.rsplit("/", 1)[0] + "/.wh.x", b"")]],
                   error="'..'")  # fmt: skip
    for i, target in enumerate(_LINKS):
        pre: list[Entry] = [("l", "l", target)]
        if target == "loop":
            pre = [("l", "l", "m"), ("l", "m", "l")]
        if target == "chain":
            pre = [("l", "m", "../.."), ("l", "l", "m")]
        for what, entry in (("file", ("f", "l/f", b"pwn")), ("dir", ("d", "l/d", "")),
                            ("symlink", ("l", "l/s", "/")), ("hardlink", ("h", "l/h", "l")),
                            ("whiteout", ("f", "l/.wh.x", b""))):  # fmt: skip
            yield Case(f"through-symlink-{i}-{what}", [[*pre, entry]], error="symlink")
        yield Case(f"through-symlink-{i}-later-layer", [pre, [("f", "l/f", b"pwn")]],
                   error="symlink")  # fmt: skip
    yield Case("hardlink-to-dir", [[("d", "d", ""), ("h", "h", "d")]], error="directory")
    yield Case("hardlink-missing", [[("h", "h", "nothere")]], error="does not exist")
    yield Case("hardlink-outside-abs", [[("h", "h", "/etc/passwd")]], error="does not exist")
    yield Case("truncated", [layer_tar([("f", "f", b"x" * 5000)])[:1500]], error="truncated")
    yield Case("file-under-file", [[("f", "a", b"1"), ("f", "a/b", b"2")]], error="non-directory")


def _trees() -> Iterator[Case]:
    yield Case("abs-symlink-verbatim", [[("l", "s", "/etc/passwd")]], {"s": ("l", "/etc/passwd")})
    yield Case("rel-symlink-verbatim", [[("l", "s", "../../x")]], {"s": ("l", "../../x")})
    yield Case("whiteout-file", [[("f", "a", b"1"), ("f", "b", b"2")], [("f", ".wh.a", b"")]],
               {"b": ("f", b"2")})  # fmt: skip
    yield Case("whiteout-dir", [[("d", "d", ""), ("f", "d/x", b"1")], [("f", ".wh.d", b"")]], {})
    yield Case("whiteout-missing", [[("f", ".wh.nothing", b"")]], {})
    yield Case("opaque", [[("d", "d", ""), ("f", "d/old", b"1")],
                          [("d", "d", ""), ("f", "d/new", b"2"), ("f", "d/.wh..wh..opq", b"")]],
               {"d": ("d", ""), "d/new": ("f", b"2")})  # fmt: skip
    yield Case("file-replaces-dir", [[("d", "a", ""), ("f", "a/x", b"1")], [("f", "a", b"2")]],
               {"a": ("f", b"2")})  # fmt: skip
    yield Case("dir-replaces-file", [[("f", "a", b"1")], [("d", "a", ""), ("f", "a/y", b"2")]],
               {"a": ("d", ""), "a/y": ("f", b"2")})  # fmt: skip
    yield Case("dir-over-dir-keeps", [[("d", "a", ""), ("f", "a/x", b"1")], [("d", "a", "")]],
               {"a": ("d", ""), "a/x": ("f", b"1")})  # fmt: skip
    yield Case("symlink-replaces-dir", [[("d", "a", ""), ("f", "a/x", b"1")], [("l", "a", "/")]],
               {"a": ("l", "/")})  # fmt: skip
    yield Case("hardlink-same-layer", [[("f", "a", b"1"), ("h", "b", "a")]],
               {"a": ("f", b"1"), "b": ("f", b"1")})  # fmt: skip
    yield Case("hardlink-cross-layer", [[("f", "a", b"1")], [("h", "b", "/a")]],
               {"a": ("f", b"1"), "b": ("f", b"1")})  # fmt: skip
    yield Case("hardlink-to-symlink", [[("l", "s", "/etc"), ("h", "h", "s")]],
               {"s": ("l", "/etc"), "h": ("l", "/etc")})  # fmt: skip
    yield Case("setuid", [[("f4755", "su", b"")]], {"su": ("f", b"x")}, modes={"su": 0o4755})
    yield Case("sticky-dir", [[("d", "t", ""), ("f", "t/x", b"1")]],
               {"t": ("d", ""), "t/x": ("f", b"1")})  # fmt: skip
    yield Case("implicit-parents", [[("f", "a/b/c", b"1")]],
               {"a": ("d", ""), "a/b": ("d", ""), "a/b/c": ("f", b"1")})  # fmt: skip
    yield Case("dot-slash-names", [[("f", "./x", b"1"), ("f", "/y", b"2")]],
               {"x": ("f", b"1"), "y": ("f", b"2")})  # fmt: skip
    yield Case("zero-blocks-after-end", [layer_tar([("f", "x", b"1")]) + b"\0" * (1 << 16)],
               {"x": ("f", b"1")})  # fmt: skip
    yield Case("fifo", [[("p", "p", "")]], {"p": ("p", "")})


def cases() -> list[Case]:
    """Every case, refusals first."""
    return [*_refuse(), *_trees()]
