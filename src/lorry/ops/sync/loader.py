"""Reading a sync file: TOML or YAML by its suffix, with the line of every key where known.

YAML keeps positions: the document is composed into nodes first, so every key and list item
has its line, a key written twice is caught (PyYAML would keep the last silently), and each
scalar's text as written is kept (so the tag ``1.10`` stays ``1.10``, not the number 1.1).
``tomllib`` gives no positions except in syntax errors, whose message carries them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lorry.errors import InvalidInputError

__all__ = ["Document", "KeyPath", "SyncConfigError", "parse_text", "read_document"]

#: Where a value sits in the document: keys and list indexes from the top.
KeyPath = tuple[str | int, ...]


class SyncConfigError(InvalidInputError):
    """A sync file (or command line) with mistakes: every one is in :attr:`problems`."""

    def __init__(self, problems: list[str]) -> None:
        first = problems[0] if problems else "invalid sync configuration"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)
        self.problems = tuple(problems)


@dataclass
class Document:
    """The parsed data, where each key path was written (1-based lines) and scalars' text."""

    data: Any
    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)
    texts: dict[KeyPath, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def where(self, path: KeyPath) -> str:
        """``FILE:LINE: KEY`` (the line of the nearest enclosing key when it has none)."""
        for n in range(len(path), -1, -1):
            line = self.lines.get(path[:n])
            if line is not None:
                return f"{self.file}:{line}: {dotted(path)}"
        return f"{self.file}: {dotted(path)}"


def dotted(path: KeyPath) -> str:
    """``sources[0].tags.semver`` for a key path (``(top level)`` for the empty one)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def read_document(path: Path) -> Document:
    """Read and parse ``path``; SyncConfigError when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SyncConfigError([f"{path}: cannot read the sync file: {reason}"]) from None
    return parse_text(text, str(path), yaml_syntax=path.suffix.lower() in (".yaml", ".yml"))


def parse_text(text: str, file: str, *, yaml_syntax: bool) -> Document:
    """Parse a document's text as YAML or TOML."""
    if not yaml_syntax:
        try:
            return Document(tomllib.loads(text), file)
        except tomllib.TOMLDecodeError as exc:
            raise SyncConfigError([f"{file}: not valid TOML: {exc}"]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{file}:{mark.line + 1}" if mark is not None else file
        raise SyncConfigError([f"{at}: not valid YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise SyncConfigError([f"{file}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    doc = Document(data, file)
    if node is not None:
        _walk(node, (), doc)
    return doc


def _walk(node: Node, path: KeyPath, doc: Document) -> None:
    """Record the line of every key and item, the text of every scalar, repeated keys."""
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, ScalarNode):
        doc.texts[path] = str(node.value)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), doc)
    elif isinstance(node, MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value) if isinstance(key, ScalarNode) else repr(key.value)
            sub = (*path, name)
            if name in seen:
                doc.problems.append(
                    f"{doc.file}:{key.start_mark.line + 1}: {dotted(sub)}: written twice"
                )
            seen.add(name)
            doc.lines[sub] = key.start_mark.line + 1
            _walk(value, sub, doc)
