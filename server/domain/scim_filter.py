"""SCIM filter expressions (RFC 7644 §3.4.2.2) parsed into a small tree.

    filter    = or-expr
    or-expr   = and-expr *("or" and-expr)
    and-expr  = unary *("and" unary)
    unary     = "not" "(" filter ")" / "(" filter ")" / attr-expr / value-path
    attr-expr = attrPath "pr" / attrPath compareOp compValue
    value-path = attrPath "[" filter "]"

Attribute names are case-insensitive (kept as written, compared lower-cased by whoever reads the tree);
a schema URN prefix (urn:ietf:params:scim:schemas:…:User:department) is kept on the path.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
MAX_LENGTH = 4096
MAX_DEPTH = 16


class FilterError(ValueError):
    """Not a valid filter; the message says what is wrong (the SCIM `invalidFilter` detail)."""


class Compare(msgspec.Struct, frozen=True):
    path: str  # lower-cased attribute path, e.g. "username", "name.familyname", "emails.value"
    op: str
    value: str | bool | int | float | None


class Present(msgspec.Struct, frozen=True):
    path: str


class And(msgspec.Struct, frozen=True):
    left: Node
    right: Node


class Or(msgspec.Struct, frozen=True):
    left: Node
    right: Node


class Not(msgspec.Struct, frozen=True):
    inner: Node


class ValuePath(msgspec.Struct, frozen=True):
    """attr[filter]: the filter applies to the elements of a multi-valued attribute."""

    path: str
    inner: Node


Node = Compare | Present | And | Or | Not | ValuePath

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<lparen>\() | (?P<rparen>\)) | (?P<lbracket>\[) | (?P<rbracket>\])
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w:.]))
    | (?P<word>(?:urn:[A-Za-z0-9:._-]+:)?[A-Za-z$][\w$-]*(?:\.[A-Za-z$][\w$-]*)*)
    )""", re.VERBOSE)

_SCHEMA_PREFIXES = (
    "urn:ietf:params:scim:schemas:core:2.0:user:",
    "urn:ietf:params:scim:schemas:core:2.0:group:",
)


def _normal_path(word: str) -> str:
    lowered = word.lower()
    for prefix in _SCHEMA_PREFIXES:
        if lowered.startswith(prefix):
            return lowered[len(prefix):]
    return lowered


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"unexpected text at position {pos}: {text[pos:pos + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        if kind is not None and token[0] != kind:
            raise FilterError(f"expected {kind}, found {token[1]!r}")
        self.pos += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() in words:
            self.pos += 1
            return token[1].lower()
        return None

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.keyword("and"):
            node = And(node, self.unary())
        return node

    def nested(self, closing: str) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError("the filter is nested too deeply")
        node = self.or_expr()
        self.take(closing)
        self.depth -= 1
        return node

    def unary(self) -> Node:
        if self.keyword("not"):
            self.take("lparen")
            return Not(self.nested("rparen"))
        token = self.peek()
        if token is not None and token[0] == "lparen":
            self.take()
            return self.nested("rparen")
        kind, word = self.take("word")
        path = _normal_path(word)
        after = self.peek()
        if after is not None and after[0] == "lbracket":
            self.take()
            inner = self.nested("rbracket")
            sub = self.peek()
            if sub is not None and sub[0] == "word" and sub[1].startswith("."):
                raise FilterError("sub-attributes after a value filter are not supported")
            return ValuePath(path, inner)
        if self.keyword("pr"):
            return Present(path)
        op = self.keyword(*OPERATORS)
        if op is None:
            found = self.peek()
            raise FilterError(f"expected an operator after {word}, found {found[1] if found else 'the end'!r}")
        return Compare(path, op, self.value())

    def value(self) -> str | bool | int | float | None:
        kind, text = self.take()
        if kind == "string":
            try:
                decoded: Any = msgspec.json.decode(text)
            except msgspec.DecodeError:
                raise FilterError(f"invalid string {text}") from None
            return str(decoded)
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "word" and text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text.lower()]
        raise FilterError(f"expected a value, found {text!r}")


def parse(text: str) -> Node:
    if len(text) > MAX_LENGTH:
        raise FilterError("the filter is too long")
    if not text.strip():
        raise FilterError("the filter is empty")
    return _Parser(_tokens(text)).parse()
