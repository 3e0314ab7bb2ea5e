"""A tiny SuiteQL parser: the subset Credit Desk's queries use, parsed honestly.

Supported: ``SELECT [DISTINCT] expr [[AS] alias], ... FROM table [alias] [[INNER|LEFT [OUTER]] JOIN
table [alias] ON expr]... [WHERE expr] [ORDER BY expr [ASC|DESC], ...]`` with ``AND``/``OR``/``NOT``,
comparisons, ``[NOT] IN (...)``, ``IS [NOT] NULL``, ``[NOT] BETWEEN``, ``[NOT] LIKE``, ``||``,
string and number literals, ``?`` placeholders (values come only from the request's ``params``)
and function calls such as ``TO_CHAR``, ``TO_TIMESTAMP``, ``BUILTIN.DF`` and ``NVL``.

Anything else raises :class:`SqlSyntaxError`, which the service turns into NetSuite's 400
"Invalid search query." — a client that drifts from the supported dialect hears about it in tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class SqlSyntaxError(ValueError):
    """The statement is outside the supported SuiteQL subset (or plain invalid)."""


# --- AST ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: str | int | float | None


@dataclass(frozen=True)
class Param:
    index: int


@dataclass(frozen=True)
class Column:
    table: str | None  # alias as written (lower-case) or None when unqualified
    name: str


@dataclass(frozen=True)
class Call:
    name: str  # upper-case, e.g. "TO_CHAR", "BUILTIN.DF"
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Unary:
    op: str  # "NOT"
    operand: Expr


@dataclass(frozen=True)
class Binary:
    op: str  # AND OR = <> < <= > >= LIKE ||
    left: Expr
    right: Expr


@dataclass(frozen=True)
class InList:
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool


@dataclass(frozen=True)
class IsNull:
    operand: Expr
    negated: bool


@dataclass(frozen=True)
class Between:
    operand: Expr
    low: Expr
    high: Expr
    negated: bool


Expr = Literal | Param | Column | Call | Unary | Binary | InList | IsNull | Between


@dataclass(frozen=True)
class SelectItem:
    expr: Expr
    alias: str | None


@dataclass(frozen=True)
class TableRef:
    table: str
    alias: str


@dataclass(frozen=True)
class Join:
    kind: str  # "INNER" or "LEFT"
    table: TableRef
    on: Expr


@dataclass(frozen=True)
class OrderItem:
    expr: Expr
    descending: bool


@dataclass
class Query:
    select: list[SelectItem]
    source: TableRef
    joins: list[Join] = field(default_factory=list)
    where: Expr | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    distinct: bool = False
    param_count: int = 0


# --- tokenizer ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*)
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|\|\||[=<>(),.?*])
    """,
    re.VERBOSE,
)
_KEYWORDS = {
    "SELECT", "DISTINCT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "ORDER", "BY",
    "ASC", "DESC", "AS", "JOIN", "INNER", "LEFT", "OUTER", "ON", "BETWEEN", "LIKE",
}  # fmt: skip


@dataclass(frozen=True)
class Token:
    kind: str  # "kw", "ident", "string", "number", "op", "end"
    value: str


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SqlSyntaxError(f"unexpected character {text[pos]!r} at position {pos}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group()
        if kind in ("ws", "comment"):
            continue
        if kind == "ident":
            upper = value.upper()
            if upper in _KEYWORDS:
                tokens.append(Token("kw", upper))
            else:
                tokens.append(Token("ident", value.lower()))
        elif kind == "string":
            tokens.append(Token("string", value[1:-1].replace("''", "'")))
        else:
            tokens.append(Token(kind or "op", value))
    tokens.append(Token("end", ""))
    return tokens


# --- parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.params = 0

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept_kw(self, *words: str) -> bool:
        if self.peek().kind == "kw" and self.peek().value in words:
            self.pos += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            raise SqlSyntaxError(f"expected {word}, found {self.peek().value or 'end of query'!r}")

    def accept_op(self, op: str) -> bool:
        if self.peek().kind == "op" and self.peek().value == op:
            self.pos += 1
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise SqlSyntaxError(f"expected {op!r}, found {self.peek().value or 'end of query'!r}")

    def ident(self) -> str:
        token = self.take()
        if token.kind != "ident":
            raise SqlSyntaxError(f"expected a name, found {token.value or 'end of query'!r}")
        return token.value

    # query ------------------------------------------------------------------------------------

    def query(self) -> Query:
        self.expect_kw("SELECT")
        distinct = self.accept_kw("DISTINCT")
        select = [self.select_item()]
        while self.accept_op(","):
            select.append(self.select_item())
        self.expect_kw("FROM")
        source = self.table_ref()
        joins: list[Join] = []
        while True:
            if self.accept_kw("LEFT"):
                self.accept_kw("OUTER")
                self.expect_kw("JOIN")
                kind = "LEFT"
            elif self.accept_kw("INNER"):
                self.expect_kw("JOIN")
                kind = "INNER"
            elif self.accept_kw("JOIN"):
                kind = "INNER"
            else:
                break
            table = self.table_ref()
            self.expect_kw("ON")
            joins.append(Join(kind, table, self.expr()))
        where = self.expr() if self.accept_kw("WHERE") else None
        order_by: list[OrderItem] = []
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            order_by.append(self.order_item())
            while self.accept_op(","):
                order_by.append(self.order_item())
        if self.peek().kind != "end":
            raise SqlSyntaxError(f"unexpected {self.peek().value!r} after the query")
        return Query(select, source, joins, where, order_by, distinct, self.params)

    def select_item(self) -> SelectItem:
        if self.peek().kind == "op" and self.peek().value == "*":
            raise SqlSyntaxError("SELECT * is not supported: name the columns")
        expr = self.expr()
        alias: str | None = None
        if self.accept_kw("AS") or self.peek().kind == "ident":
            alias = self.ident()
        return SelectItem(expr, alias)

    def table_ref(self) -> TableRef:
        table = self.ident()
        self.accept_kw("AS")
        alias = self.ident() if self.peek().kind == "ident" else table
        return TableRef(table, alias)

    def order_item(self) -> OrderItem:
        expr = self.expr()
        descending = False
        if self.accept_kw("DESC"):
            descending = True
        else:
            self.accept_kw("ASC")
        return OrderItem(expr, descending)

    # expressions ------------------------------------------------------------------------------

    def expr(self) -> Expr:
        left = self.and_expr()
        while self.accept_kw("OR"):
            left = Binary("OR", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.accept_kw("AND"):
            left = Binary("AND", left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        if self.accept_kw("NOT"):
            return Unary("NOT", self.not_expr())
        return self.predicate()

    def predicate(self) -> Expr:
        left = self.concat()
        token = self.peek()
        if token.kind == "op" and token.value in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.pos += 1
            op = "<>" if token.value == "!=" else token.value
            return Binary(op, left, self.concat())
        if self.accept_kw("IS"):
            negated = self.accept_kw("NOT")
            self.expect_kw("NULL")
            return IsNull(left, negated)
        negated = self.accept_kw("NOT")
        if self.accept_kw("IN"):
            self.expect_op("(")
            items = [self.concat()]
            while self.accept_op(","):
                items.append(self.concat())
            self.expect_op(")")
            return InList(left, tuple(items), negated)
        if self.accept_kw("BETWEEN"):
            low = self.concat()
            self.expect_kw("AND")
            return Between(left, low, self.concat(), negated)
        if self.accept_kw("LIKE"):
            like = Binary("LIKE", left, self.concat())
            return Unary("NOT", like) if negated else like
        if negated:
            raise SqlSyntaxError("expected IN, BETWEEN or LIKE after NOT")
        return left

    def concat(self) -> Expr:
        left = self.primary()
        while self.accept_op("||"):
            left = Binary("||", left, self.primary())
        return left

    def primary(self) -> Expr:
        token = self.take()
        if token.kind == "string":
            return Literal(token.value)
        if token.kind == "number":
            return Literal(float(token.value) if "." in token.value else int(token.value))
        if token.kind == "kw" and token.value == "NULL":
            return Literal(None)
        if token.kind == "op" and token.value == "?":
            self.params += 1
            return Param(self.params - 1)
        if token.kind == "op" and token.value == "(":
            inner = self.expr()
            self.expect_op(")")
            return inner
        if token.kind == "ident":
            name = token.value
            if self.accept_op("."):
                second = self.ident()
                if self.accept_op("("):
                    return Call(f"{name}.{second}".upper(), self.call_args())
                return Column(name, second)
            if self.accept_op("("):
                return Call(name.upper(), self.call_args())
            return Column(None, name)
        raise SqlSyntaxError(f"unexpected {token.value or 'end of query'!r}")

    def call_args(self) -> tuple[Expr, ...]:
        if self.accept_op(")"):
            return ()
        args = [self.expr()]
        while self.accept_op(","):
            args.append(self.expr())
        self.expect_op(")")
        return tuple(args)


def parse(text: str) -> Query:
    """Parse one SuiteQL statement; raises :class:`SqlSyntaxError` outside the subset."""
    if not text or not text.strip():
        raise SqlSyntaxError("empty query")
    return _Parser(text).query()


def conjuncts(expr: Expr | None) -> list[Expr]:
    """The top-level ``AND`` terms of ``expr`` (empty for no WHERE clause)."""
    if expr is None:
        return []
    if isinstance(expr, Binary) and expr.op == "AND":
        return conjuncts(expr.left) + conjuncts(expr.right)
    return [expr]


def column_refs(expr: Expr) -> list[Column]:
    """Every column referenced inside ``expr``."""
    if isinstance(expr, Column):
        return [expr]
    if isinstance(expr, Call):
        return [ref for arg in expr.args for ref in column_refs(arg)]
    if isinstance(expr, Unary):
        return column_refs(expr.operand)
    if isinstance(expr, Binary):
        return column_refs(expr.left) + column_refs(expr.right)
    if isinstance(expr, InList):
        return column_refs(expr.operand) + [r for item in expr.items for r in column_refs(item)]
    if isinstance(expr, IsNull):
        return column_refs(expr.operand)
    if isinstance(expr, Between):
        return column_refs(expr.operand) + column_refs(expr.low) + column_refs(expr.high)
    return []
