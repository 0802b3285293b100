"""The subset of Go templates docker's ``--format`` takes, and its aligned ``table`` output.

Supported, as docker users write them: text with ``{{ … }}`` actions; ``.`` and ``.Field``
(and ``.Field.Sub``); string and integer literals; the functions ``json``, ``lower``,
``upper``, ``title``, ``join``, ``truncate``, ``pad``, ``index``, ``len`` and ``println``;
pipelines (``{{.Tag | upper}}``; for a function of several arguments the piped value is the
first); ``\\t`` and ``\\n`` typed as two characters; a leading ``table`` that adds a header
row (each field rendered as its column title) and aligns columns as docker's tabwriter does.
Anything else (an unknown field or function, a ``range``) is a one-line
:class:`InvalidInputError` naming it, raised before any output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lorry.errors import InvalidInputError

__all__ = ["Template", "align", "parse_format", "render_each"]

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:(\|)|("(?:[^"\\]|\\.)*")|(-?\d+)|(\.[A-Za-z0-9_.]*)|([A-Za-z_]\w*))')


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text(value: Any) -> str:
    """How Go's template prints a value: strings bare, None as ``<no value>``."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_text(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _truncate(value: Any, n: Any) -> str:
    return _text(value)[: int(n)]


def _pad(value: Any, left: Any, right: Any) -> str:
    return " " * int(left) + _text(value) + " " * int(right)


def _join(value: Any, sep: Any) -> str:
    if not isinstance(value, list | tuple):
        raise InvalidInputError("--format: join needs a list")
    return str(sep).join(_text(v) for v in value)


def _index(value: Any, key: Any) -> Any:
    try:
        return value[key]
    except (KeyError, IndexError, TypeError):
        raise InvalidInputError(f"--format: index {key!r} is out of range") from None


def _len(value: Any) -> int:
    if not isinstance(value, list | tuple | Mapping | str):
        raise InvalidInputError("--format: len needs a list, map or string")
    return len(value)


_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "json": (1, _json),
    "lower": (1, lambda v: _text(v).lower()),
    "upper": (1, lambda v: _text(v).upper()),
    "title": (1, lambda v: re.sub(r"(?<![\w'])\w", lambda m: m.group().upper(), _text(v))),
    "println": (1, lambda v: _text(v) + "\n"),
    "len": (1, _len),
    "index": (2, _index),
    "join": (2, _join),
    "truncate": (2, _truncate),
    "pad": (3, _pad),
}

#: One argument of a command: a field path (tuple of names; () is ``.``) or a literal.
_Arg = tuple[str, ...] | str | int


@dataclass(frozen=True)
class _Command:
    """A function and its arguments, or a lone value (``function`` None)."""

    function: str | None
    args: tuple[_Arg, ...]


@dataclass(frozen=True)
class Template:
    """A parsed ``--format``: literal text and pipelines, in order."""

    parts: tuple[str | tuple[_Command, ...], ...]
    table: bool
    fields: frozenset[str]

    def render(self, data: Mapping[str, Any]) -> str:
        """The template filled in from ``data`` (keys are the field names)."""
        out: list[str] = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else _text(_pipeline(part, data)))
        return "".join(out)


def parse_format(text: str, fields: Sequence[str]) -> Template:
    """Parse ``text`` for objects with these top-level ``fields``; bad input says what is wrong."""
    body = text.replace("\\t", "\t").replace("\\n", "\n")
    table = body.startswith("table")
    if table:
        body = body[len("table") :].lstrip(" ")
    known = frozenset(fields)
    parts: list[str | tuple[_Command, ...]] = []
    pos = 0
    for m in _ACTION.finditer(body):
        parts.append(body[pos : m.start()])
        parts.append(_parse_pipeline(m.group(1), known))
        pos = m.end()
    rest = body[pos:]
    if "{{" in rest or "}}" in rest:
        raise InvalidInputError(f"--format {text!r}: unmatched '{{{{' or '}}}}'")
    parts.append(rest)
    return Template(tuple(p for p in parts if p != ""), table, known)


def _parse_pipeline(action: str, known: frozenset[str]) -> tuple[_Command, ...]:
    """``a | f x | g`` as commands; fields checked against ``known``."""
    tokens: list[str] = []
    pos = 0
    while pos < len(action):
        m = _TOKEN.match(action, pos)
        if m is None or m.end() == pos:
            raise InvalidInputError(
                f"--format: cannot read {action[pos:].strip()!r} in {{{{{action}}}}}"
            )
        tokens.append(m.group(0).strip())
        pos = m.end()
    if not tokens:
        raise InvalidInputError("--format: empty {{ }}")
    commands: list[_Command] = []
    current: list[str] = []
    for tok in [*tokens, "|"]:
        if tok != "|":
            current.append(tok)
            continue
        if not current:
            raise InvalidInputError(f"--format: empty command in {{{{{action}}}}}")
        commands.append(_command(current, known, first=not commands))
        current = []
    return tuple(commands)


def _command(tokens: list[str], known: frozenset[str], *, first: bool) -> _Command:
    """One command of a pipeline."""
    head, *rest = tokens
    if head in _FUNCTIONS:
        arity = _FUNCTIONS[head][0]
        given = len(rest) + (0 if first else 1)
        if given != arity:
            raise InvalidInputError(f"--format: {head} takes {arity} argument(s), not {given}")
        return _Command(head, tuple(_arg(t, known) for t in rest))
    if head[0].isalpha():
        raise InvalidInputError(f"--format: unknown function {head!r}")
    if rest or not first:
        raise InvalidInputError(f"--format: {head} is not a function")
    return _Command(None, (_arg(head, known),))


def _arg(token: str, known: frozenset[str]) -> _Arg:
    """A field path, or a string or integer literal."""
    if token.startswith('"'):
        return str(json.loads(token))
    if token.startswith("."):
        path = tuple(p for p in token[1:].split(".") if p)
        if path and path[0] not in known:
            raise InvalidInputError(
                f"--format: unknown field .{path[0]} (known: {', '.join(sorted(known))})"
            )
        return path
    try:
        return int(token)
    except ValueError:
        raise InvalidInputError(f"--format: unexpected {token!r}") from None


def _value(arg: _Arg, data: Mapping[str, Any]) -> Any:
    if not isinstance(arg, tuple):
        return arg
    value: Any = data
    for name in arg:
        if not isinstance(value, Mapping) or name not in value:
            return None
        value = value[name]
    return value


def _pipeline(commands: tuple[_Command, ...], data: Mapping[str, Any]) -> Any:
    result: Any = None
    for i, cmd in enumerate(commands):
        args = [_value(a, data) for a in cmd.args]
        if cmd.function is None:
            result = args[0]
            continue
        if i > 0:
            args.append(result)
        fn = _FUNCTIONS[cmd.function][1]
        if cmd.function in ("join", "truncate", "pad", "index") and i > 0:
            args = [args[-1], *args[:-1]]  # the piped value is the subject
        result = fn(*args)
    return result


def align(lines: Sequence[str], *, minwidth: int = 10, padding: int = 3) -> list[str]:
    """Tab-separated cells padded into columns, as docker's tabwriter(10, 1, 3, ' ') does.

    A cell that ends a line is not padded; each column is as wide as its widest cell plus
    ``padding``, at least ``minwidth``.
    """
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for cells in rows:
        for i, cell in enumerate(cells[:-1]):
            widths[i] = max(widths.get(i, minwidth), len(cell) + padding)
    return [
        "".join(cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])) + cells[-1]
        for cells in rows
    ]


def render_each(
    fmt: str,
    rows: Sequence[Mapping[str, Any]],
    fields: Sequence[str] | None = None,
    headers: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every row through ``fmt`` (``json``: ``{{json .}}``), one output line per row.

    ``fields`` are the names a template may use (default: every key the rows have); a
    ``table`` template gets a header row rendered from ``headers`` (default: field names in
    capitals) and docker's alignment.
    """
    known = list(fields) if fields is not None else sorted({k for r in rows for k in r})
    template = parse_format("{{json .}}" if fmt == "json" else fmt, known)
    lines = [template.render(row) for row in rows]
    if template.table:
        titles = headers if headers is not None else {f: f.upper() for f in known}
        lines = align([template.render(titles), *lines])
    return lines
