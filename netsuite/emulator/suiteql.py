"""SuiteQL execution for the emulator: bind, plan, evaluate, page (netsuite.md §2).

The evaluator is deliberately small but honest: every row returned has passed the whole WHERE
clause evaluated with the request's bound ``params``. Speed on big seeds comes from a planner that
only *narrows* scans — equality on a key column, or a ``(lastmodifieddate, id)`` keyset bound that
maps onto the seed's monotone order — so a page of a 1,000,000-customer account costs a binary
search plus one thousand generated records.

Each statement is evaluated by functions compiled once per request from its expression tree
(:meth:`_Evaluator.compiled`): same values, same errors, same order of evaluation as walking the
tree (``SuiteQLService(reference=True)`` still walks it; the tests compare the two), without
dispatching on node types for every row. Result items are assembled with ``operator.itemgetter``
(:class:`_Projector`).

Paging follows the query service: ``limit`` 1..1000, ``offset`` a multiple of ``limit``, and only
the first 100,000 results of a query can be read (Salto's PR #6061: "SuiteQL returns only the first
100K items"); ``totalResults`` is capped the same way (UNCONFIRMED whether NetSuite caps it too —
the cap is the stricter assumption for a client).
"""

from __future__ import annotations

import functools
import operator
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from netsuite.emulator.errors import NsError, invalid_query, unexpected_error
from netsuite.emulator.sql import (
    Between,
    Binary,
    Call,
    Column,
    Expr,
    InList,
    IsNull,
    Literal,
    OrderItem,
    Param,
    Query,
    SqlSyntaxError,
    Unary,
    column_refs,
    conjuncts,
    parse,
)
from netsuite.emulator.state import EmulatorState
from netsuite.emulator.tables import Hint, Row, Table, build_tables

MAX_LIMIT = 1000
MAX_RESULTS = 100_000
BOUND_CACHE_SIZE = 64
"""Parsed and bound statements kept per service, by their text."""

_FUNCTIONS: dict[str, tuple[int, int]] = {
    "TO_CHAR": (1, 2),
    "TO_TIMESTAMP": (2, 2),
    "TO_DATE": (2, 2),
    "BUILTIN.DF": (1, 1),
    "NVL": (2, 2),
    "COALESCE": (1, 8),
    "UPPER": (1, 1),
    "LOWER": (1, 1),
}
_FORMAT_TOKENS: tuple[tuple[str, str], ...] = (
    ("YYYY", "%Y"),
    ("HH24", "%H"),
    ("HH12", "%I"),
    ("HH", "%I"),  # Oracle's HH is the 12-hour clock: the classic keyset bug, reproduced
    ("MM", "%m"),
    ("DD", "%d"),
    ("MI", "%M"),
    ("SS", "%S"),
    ("AM", "%p"),
    ("PM", "%p"),
)


@dataclass(frozen=True)
class Page:
    """One SuiteQL response page (rendered by the web layer)."""

    items: list[dict[str, Any]]
    offset: int
    total: int
    has_more: bool


class _EvalError(Exception):
    """A runtime problem evaluating a well-formed query (bad date literal, bad comparison)."""


@functools.lru_cache(maxsize=64)
def _strftime_format(oracle: str) -> str:
    out: list[str] = []
    pos = 0
    upper = oracle.upper()
    while pos < len(oracle):
        for token, directive in _FORMAT_TOKENS:
            if upper.startswith(token, pos):
                out.append(directive)
                pos += len(token)
                break
        else:
            char = oracle[pos]
            if char.isalnum():
                raise _EvalError(f"date format not recognized: {oracle!r}")
            out.append("%%" if char == "%" else char)
            pos += 1
    return "".join(out)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring two non-null SQL values to one comparable type, as Oracle's implicit casts would."""
    if isinstance(left, datetime) or isinstance(right, datetime):
        if isinstance(left, datetime) and isinstance(right, datetime):
            return left, right
        raise _EvalError("cannot compare a date with text: convert it with TO_TIMESTAMP")
    left_is_num = isinstance(left, int | float | Decimal) and not isinstance(left, bool)
    right_is_num = isinstance(right, int | float | Decimal) and not isinstance(right, bool)
    if left_is_num or right_is_num:
        a, b = _number(left), _number(right)
        if a is None or b is None:
            raise _EvalError(f"invalid number: {right if a is not None else left!r}")
        return a, b
    return str(left), str(right)


def _compare(op: str, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    a, b = _comparable(left, right)
    if op == "=":
        return bool(a == b)
    if op == "<>":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    raise _EvalError(f"unknown operator {op}")


def _like(value: Any, pattern: Any) -> bool | None:
    if value is None or pattern is None:
        return None
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(pattern))
    return re.fullmatch(regex, str(value), flags=re.DOTALL) is not None


def _is_constant(expr: Expr) -> bool:
    return not column_refs(expr)


class _Bound:
    """A query with its tables resolved and columns checked against their schemas."""

    def __init__(self, query: Query, tables: dict[str, Table]) -> None:
        self.query = query
        self.aliases: dict[str, Table] = {}
        for ref in [query.source, *(join.table for join in query.joins)]:
            table = tables.get(ref.table)
            if table is None:
                raise invalid_query(f"Search error occurred: Record '{ref.table}' was not found.")
            if ref.alias in self.aliases:
                raise invalid_query(f"Search error occurred: duplicate alias '{ref.alias}'.")
            self.aliases[ref.alias] = table
        select_aliases = {item.alias for item in query.select if item.alias}
        exprs: list[Expr] = [item.expr for item in query.select]
        exprs += [join.on for join in query.joins]
        if query.where is not None:
            exprs.append(query.where)
        exprs += [
            item.expr
            for item in query.order_by
            if not (
                isinstance(item.expr, Column) and item.expr.table is None and item.expr.name in select_aliases
            )
        ]
        self.columns: dict[Column, tuple[str, str]] = {}
        self.column_nodes: dict[int, tuple[str, str]] = {}  # by node id: no dataclass hashing per row
        self.constant_calls: set[int] = set()
        self.constant_lists: set[int] = set()
        for expr in exprs:
            self._check(expr)
            self.constant_calls.update(id(call) for call in _calls(expr) if _is_constant(call))
            self.constant_lists.update(
                id(item) for item in _in_lists(expr) if all(_is_constant(e) for e in item.items)
            )
        self.used: dict[str, frozenset[str]] = {
            alias: frozenset(name for owner, name in self.columns.values() if owner == alias)
            for alias in self.aliases
        }
        """The columns of each table the query refers to (tables may leave the others out)."""

    def _check(self, expr: Expr) -> None:
        for ref in column_refs(expr):
            self.columns[ref] = self.column_nodes[id(ref)] = self.resolve(ref)
        for call in _calls(expr):
            arity = _FUNCTIONS.get(call.name)
            if arity is None:
                raise invalid_query(f"Search error occurred: Unknown function {call.name}.")
            if not arity[0] <= len(call.args) <= arity[1]:
                raise invalid_query(f"Search error occurred: wrong number of arguments for {call.name}.")
            if call.name == "BUILTIN.DF" and not isinstance(call.args[0], Column):
                raise invalid_query("Search error occurred: BUILTIN.DF takes a field.")

    def resolve(self, ref: Column) -> tuple[str, str]:
        if ref.table is not None:
            table = self.aliases.get(ref.table)
            if table is None:
                raise invalid_query(f"Search error occurred: Unknown identifier '{ref.table}'.")
            if ref.name not in table.columns:
                raise invalid_query(f"Search error occurred: Field '{ref.name}' not found.")
            return ref.table, ref.name
        owners = [alias for alias, table in self.aliases.items() if ref.name in table.columns]
        if not owners:
            raise invalid_query(f"Search error occurred: Field '{ref.name}' not found.")
        if len(owners) > 1:
            raise invalid_query(f"Search error occurred: Field '{ref.name}' is ambiguous.")
        return owners[0], ref.name


def _calls(expr: Expr) -> Iterator[Call]:
    if isinstance(expr, Call):
        yield expr
        for arg in expr.args:
            yield from _calls(arg)
    elif isinstance(expr, Unary):
        yield from _calls(expr.operand)
    elif isinstance(expr, Binary):
        yield from _calls(expr.left)
        yield from _calls(expr.right)
    elif isinstance(expr, InList):
        yield from _calls(expr.operand)
        for item in expr.items:
            yield from _calls(item)
    elif isinstance(expr, IsNull):
        yield from _calls(expr.operand)
    elif isinstance(expr, Between):
        for part in (expr.operand, expr.low, expr.high):
            yield from _calls(part)


def _in_lists(expr: Expr) -> Iterator[InList]:
    if isinstance(expr, InList):
        yield expr
        yield from _in_lists(expr.operand)
        for item in expr.items:
            yield from _in_lists(item)
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from _in_lists(arg)
    elif isinstance(expr, Unary | IsNull):
        yield from _in_lists(expr.operand)
    elif isinstance(expr, Binary):
        yield from _in_lists(expr.left)
        yield from _in_lists(expr.right)
    elif isinstance(expr, Between):
        for part in (expr.operand, expr.low, expr.high):
            yield from _in_lists(part)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


class _Members:
    """The values of a constant ``IN (...)`` list, prepared for hashed lookups.

    ``x IN (a, b, ...)`` is ``x = a OR x = b OR ...`` under :func:`_compare`'s implicit casts: a
    number against text compares as numbers (and fails on text that is no number), text against
    text compares as text. For lists of non-null numbers and text -- every list Credit Desk
    sends -- that is two set lookups: the operand as a number among the items as numbers, the
    operand as text among the text items. Anything else (a NULL item, dates, booleans, a
    comparison that would fail) returns ``None`` from :meth:`lookup`, and the caller compares
    item by item exactly as before, raising the same errors.
    """

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.simple = all(v is not None and (isinstance(v, str) or _is_number(v)) for v in values)
        self.texts = {v for v in values if isinstance(v, str)}
        numbers = [_number(v) for v in values if _is_number(v)]
        self.numbers = {n for n in numbers if n is not None}
        texts_as_numbers = [_number(v) for v in self.texts]
        self.all_as_numbers: set[Decimal] | None = None
        if all(n is not None and n.is_finite() for n in [*numbers, *texts_as_numbers]):
            self.all_as_numbers = {n for n in [*numbers, *texts_as_numbers] if n is not None}

    def lookup(self, operand: Any) -> bool | None:
        """``operand IN values`` (True/False), or ``None``: compare item by item instead."""
        if not self.simple:
            return None
        if type(operand) is int and self.all_as_numbers is not None:
            return operand in self.all_as_numbers  # an int and an equal Decimal hash alike
        if _is_number(operand):
            number = _number(operand)
            if self.all_as_numbers is None or number is None or not number.is_finite():
                return None
            return number in self.all_as_numbers
        if isinstance(operand, str):
            if self.numbers:
                number = _number(operand)
                if number is None or not number.is_finite():
                    return None
                if number in self.numbers:
                    return True
            return operand in self.texts
        return None


Env = dict[str, Row | None]
_SelectEntry = tuple[str, tuple[str, str] | None, Callable[[Env], Any]]

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SAME_TYPE_COMPARABLE = frozenset({int, str, datetime, Decimal})
"""Types two values of which :func:`_comparable` hands back for direct comparison (ints as
Decimals, which order exactly as the ints do)."""
_MEMO_SIZE = 4096


class _Projector:
    """Turns a row environment into a result item: the SELECT list's values in order, null ones
    left out (as NetSuite does), the others as wire text.

    Plain columns are read table by table with ``operator.itemgetter`` and put in SELECT order
    with another, so a row costs a few C calls plus one pass over its values.
    """

    def __init__(self, entries: list[_SelectEntry], *, reference: bool = False) -> None:
        self.entries = entries
        self.reference = reference
        self.keys = tuple(key for key, _, _ in entries)
        by_alias: dict[str, list[tuple[int, str]]] = {}
        computed: list[tuple[int, Callable[[Env], Any]]] = []
        for position, (_, column, get) in enumerate(entries):
            if column is None:
                computed.append((position, get))
            else:
                by_alias.setdefault(column[0], []).append((position, column[1]))
        order: list[int] = []
        self.tables: list[tuple[str, Callable[[Row], tuple[Any, ...]], tuple[None, ...]]] = []
        for alias, columns in by_alias.items():
            names = [name for _, name in columns]
            self.tables.append((alias, _getter(names), (None,) * len(names)))
            order += [position for position, _ in columns]
        self.computed = [get for _, get in computed]
        order += [position for position, _ in computed]
        where = {position: index for index, position in enumerate(order)}
        self.reorder = _getter([where[position] for position in range(len(entries))])

    def __call__(self, env: Env) -> dict[str, Any]:
        if self.reference:
            return self._slowly(env)
        values: tuple[Any, ...] = ()
        try:
            for alias, getter, nulls in self.tables:
                row = env.get(alias)
                values += nulls if row is None else getter(row)
        except KeyError:  # a row without one of the columns: read it as null, the slow way
            return self._slowly(env)
        if self.computed:
            values += tuple([get(env) for get in self.computed])
        item: dict[str, Any] = {"links": []}
        for key, value in zip(self.keys, self.reorder(values), strict=True):
            if value is not None:  # NetSuite leaves null columns out of the item
                item[key] = value if type(value) is str else _text(value)
        return item

    def _slowly(self, env: Env) -> dict[str, Any]:
        item: dict[str, Any] = {"links": []}
        for key, column, get in self.entries:
            if column is not None:
                row = env.get(column[0])
                value = None if row is None else row.get(column[1])
            else:
                value = get(env)
            if value is not None:
                item[key] = value if type(value) is str else _text(value)
        return item


def _getter(keys: list[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """``operator.itemgetter(*keys)``, returning a tuple however many keys there are."""
    if len(keys) == 1:
        (only,) = keys
        return lambda container: (container[only],)
    return operator.itemgetter(*keys)


@dataclass(frozen=True)
class _JoinPlan:
    """How to narrow a join's scan for one outer row: ``keys`` are the ON clause's
    ``inner key column = outer expression`` terms, in the clause's order."""

    keys: tuple[tuple[str, Callable[[Env], Any]], ...]
    on: Callable[[Env], bool | None]


class _Evaluator:
    def __init__(self, bound: _Bound, params: list[Any], zone: ZoneInfo, *, reference: bool = False) -> None:
        self.bound = bound
        self.params = params
        self.zone = zone
        self.reference = reference
        self._constants: dict[int, Any] = {}
        self._members: dict[int, _Members] = {}
        self._select: list[_SelectEntry] | None = None
        self._compiled: dict[int, Callable[[Env], Any]] = {}
        self._joins: dict[int, _JoinPlan] = {}
        self._projector: _Projector | None = None

    def value(self, expr: Expr, env: Env) -> Any:
        if isinstance(expr, Literal):
            return expr.value
        if isinstance(expr, Param):
            return self.params[expr.index]
        if isinstance(expr, Column):
            alias, name = self.bound.column_nodes[id(expr)]
            row = env.get(alias)
            return None if row is None else row.get(name)
        if isinstance(expr, Call):
            if id(expr) in self.bound.constant_calls:
                # TO_TIMESTAMP(?, ...) and friends: one value per query, not one per row
                key = id(expr)
                if key not in self._constants:
                    self._constants[key] = self.call(expr, env)
                return self._constants[key]
            return self.call(expr, env)
        if isinstance(expr, Unary):
            inner = self.truth(expr.operand, env)
            return None if inner is None else not inner
        if isinstance(expr, Binary):
            return self.binary(expr, env)
        if isinstance(expr, InList):
            operand = self.value(expr.operand, env)
            if operand is None:
                return None
            found = self.in_list(expr, operand, env)
            return None if found is None else (not found if expr.negated else found)
        if isinstance(expr, IsNull):
            is_null = self.value(expr.operand, env) is None
            return not is_null if expr.negated else is_null
        if isinstance(expr, Between):
            operand = self.value(expr.operand, env)
            low = _compare(">=", operand, self.value(expr.low, env))
            high = _compare("<=", operand, self.value(expr.high, env))
            inside = _and(low, high)
            return None if inside is None else (not inside if expr.negated else inside)
        raise _EvalError(f"unsupported expression {expr!r}")

    def projector(self) -> _Projector:
        if self._projector is None:
            self._projector = _Projector(self.select_list(), reference=self.reference)
        return self._projector

    def select_list(self) -> list[_SelectEntry]:
        """The SELECT list as ``(result key, (alias, column) if a plain column, value of the
        row)``, built once per query."""
        if self._select is None:
            self._select = []
            for position, select in enumerate(self.bound.query.select, start=1):
                if select.alias:
                    key = select.alias.lower()
                elif isinstance(select.expr, Column):
                    key = select.expr.name
                else:
                    key = f"expr{position}"
                column = self.bound.column_nodes[id(select.expr)] if isinstance(select.expr, Column) else None
                self._select.append((key, column, self.compiled(select.expr)))
        return self._select

    def compiled(self, expr: Expr) -> Callable[[Env], Any]:
        """A function computing ``self.value(expr, env)`` -- same value, same errors, same order
        of evaluation -- built once per expression and query, so evaluating a clause on a thousand
        rows does not walk its tree (and dispatch on node types) a thousand times."""
        key = id(expr)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = partial(self.value, expr) if self.reference else self._compile(expr)
        return found

    def compiled_truth(self, expr: Expr) -> Callable[[Env], bool | None]:
        """:meth:`truth` of ``expr`` as a function (see :meth:`compiled`)."""
        if self.reference:
            return partial(self.truth, expr)
        fn = self.compiled(expr)
        if isinstance(expr, Unary | InList | IsNull | Between) or (
            isinstance(expr, Binary) and expr.op not in ("||",)
        ):
            return fn  # these yield True, False or None only

        def truth(env: Env) -> bool | None:
            result = fn(env)
            if result is None or isinstance(result, bool):
                return result
            raise _EvalError("a condition must be a comparison")

        return truth

    def _compile(self, expr: Expr) -> Callable[[Env], Any]:
        if isinstance(expr, Literal):
            literal = expr.value
            return lambda env: literal
        if isinstance(expr, Param):
            param = self.params[expr.index]
            return lambda env: param
        if isinstance(expr, Column):
            alias, name = self.bound.column_nodes[id(expr)]

            def column(env: Env) -> Any:
                row = env.get(alias)
                return None if row is None else row.get(name)

            return column
        if isinstance(expr, Call):
            return self._compile_call(expr)
        if isinstance(expr, Unary):
            inner = self.compiled_truth(expr.operand)

            def negate(env: Env) -> bool | None:
                value = inner(env)
                return None if value is None else not value

            return negate
        if isinstance(expr, Binary):
            return self._compile_binary(expr)
        if isinstance(expr, InList):
            operand, negated = self.compiled(expr.operand), expr.negated

            def in_list(env: Env) -> bool | None:
                value = operand(env)
                if value is None:
                    return None
                found = self.in_list(expr, value, env)
                return None if found is None else (not found if negated else found)

            return in_list
        if isinstance(expr, IsNull):
            tested, negated = self.compiled(expr.operand), expr.negated
            return lambda env: (tested(env) is not None) if negated else (tested(env) is None)
        if isinstance(expr, Between):
            operand, low, high = (self.compiled(e) for e in (expr.operand, expr.low, expr.high))
            negated = expr.negated

            def between(env: Env) -> bool | None:
                value = operand(env)
                inside = _and(_compare(">=", value, low(env)), _compare("<=", value, high(env)))
                return None if inside is None else (not inside if negated else inside)

            return between
        return partial(self.value, expr)

    def _constant_number(self, expr: Expr) -> Decimal | None:
        """The finite number a ``?`` or literal holding text stands for, if it is one."""
        if isinstance(expr, Param):
            value: Any = self.params[expr.index]
        elif isinstance(expr, Literal):
            value = expr.value
        else:
            return None
        if type(value) is not str:
            return None
        number = _number(value)
        return number if number is not None and number.is_finite() else None

    def _compile_call(self, expr: Call) -> Callable[[Env], Any]:
        if id(expr) in self.bound.constant_calls:
            key, constants = id(expr), self._constants

            def constant(env: Env) -> Any:
                if key not in constants:
                    constants[key] = self.call(expr, env)
                return constants[key]

            return constant
        if expr.name == "BUILTIN.DF" and isinstance(expr.args[0], Column):
            table_alias, name = self.bound.column_nodes[id(expr.args[0])]
            display = self.bound.aliases[table_alias].display
            field = self.compiled(expr.args[0])
            return lambda env: display(name, field(env))
        fmt = expr.args[1] if expr.name == "TO_CHAR" and len(expr.args) == 2 else None
        if isinstance(fmt, Literal) and isinstance(fmt.value, str):
            try:
                directives = _strftime_format(fmt.value)
            except _EvalError:  # raised by the general path, and only on a date value
                return partial(self.value, expr)
            operand, zone = self.compiled(expr.args[0]), self.zone
            memo: dict[datetime, str] = {}  # bulk-stamped records share their datetimes

            def to_char(env: Env) -> Any:
                value = operand(env)
                if value is None:
                    return None
                if isinstance(value, datetime):
                    text = memo.get(value)
                    if text is None:
                        if len(memo) >= _MEMO_SIZE:
                            memo.clear()
                        text = memo[value] = value.astimezone(zone).strftime(directives)
                    return text
                return _text(value)

            return to_char
        return partial(self.value, expr)

    def _compile_binary(self, expr: Binary) -> Callable[[Env], Any]:
        op = expr.op
        if op in ("AND", "OR"):
            left_truth, right_truth = self.compiled_truth(expr.left), self.compiled_truth(expr.right)
            if op == "AND":

                def both(env: Env) -> bool | None:
                    return _and(left_truth(env), right_truth(env))

                return both

            def either(env: Env) -> bool | None:
                left_value, right_value = left_truth(env), right_truth(env)
                if left_value or right_value:
                    return True
                return None if left_value is None or right_value is None else False

            return either
        left, right = self.compiled(expr.left), self.compiled(expr.right)
        if op == "||":
            return lambda env: f"{_text(left(env))}{_text(right(env))}"
        if op == "LIKE":
            return lambda env: _like(left(env), right(env))
        fast = _OPERATORS.get(op)
        if fast is None:
            return lambda env: _compare(op, left(env), right(env))
        constant = self._constant_number(expr.right)
        if constant is not None:  # ``column > ?`` with a number sent as text, as clients do

            def against_number(env: Env) -> bool | None:
                a = left(env)
                if a is None:
                    return None
                kind = type(a)
                if kind is int or kind is Decimal:  # _comparable would compare both as Decimals
                    return fast(a, constant)
                return _compare(op, a, right(env))

            return against_number

        def compare(env: Env) -> bool | None:
            a, b = left(env), right(env)
            if a is None or b is None:
                return None
            kind = type(a)
            if kind is type(b) and kind in _SAME_TYPE_COMPARABLE:
                return fast(a, b)  # what _compare's casts would leave as they are
            return _compare(op, a, b)

        return compare

    def in_list(self, expr: InList, operand: Any, env: Env) -> bool | None:
        """``operand IN (items)`` with SQL's three-valued logic. A list of constants (``?``
        placeholders, literals) is evaluated once per query and looked up by hash, so a query
        with a 1000-id list costs one lookup per row, not a thousand comparisons."""
        if id(expr) in self.bound.constant_lists:
            members = self._members.get(id(expr))
            if members is None:
                members = self._members[id(expr)] = _Members([self.value(i, {}) for i in expr.items])
            found = members.lookup(operand)
            if found is not None:
                return found
            values = members.values
        else:
            values = [self.value(item, env) for item in expr.items]
        results = [_compare("=", operand, value) for value in values]
        return True if any(results) else None if any(r is None for r in results) else False

    def truth(self, expr: Expr, env: Env) -> bool | None:
        result = self.value(expr, env)
        if result is None or isinstance(result, bool):
            return result
        raise _EvalError("a condition must be a comparison")

    def binary(self, expr: Binary, env: Env) -> Any:
        if expr.op == "AND":
            return _and(self.truth(expr.left, env), self.truth(expr.right, env))
        if expr.op == "OR":
            left, right = self.truth(expr.left, env), self.truth(expr.right, env)
            if left or right:
                return True
            return None if left is None or right is None else False
        left_value, right_value = self.value(expr.left, env), self.value(expr.right, env)
        if expr.op == "||":
            return f"{_text(left_value)}{_text(right_value)}"
        if expr.op == "LIKE":
            return _like(left_value, right_value)
        return _compare(expr.op, left_value, right_value)

    def call(self, expr: Call, env: Env) -> Any:
        if expr.name == "BUILTIN.DF":
            column = expr.args[0]
            assert isinstance(column, Column)  # checked at bind time
            alias, name = self.bound.columns[column]
            return self.bound.aliases[alias].display(name, self.value(column, env))
        args = [self.value(arg, env) for arg in expr.args]
        if expr.name in ("TO_TIMESTAMP", "TO_DATE"):
            text, fmt = args
            if text is None:
                return None
            if not isinstance(text, str) or not isinstance(fmt, str):
                raise _EvalError(f"{expr.name} needs text and a format")
            try:
                parsed = datetime.strptime(text.strip(), _strftime_format(fmt))  # noqa: DTZ007
            except ValueError as exc:
                raise _EvalError(f"literal does not match format string: {text!r}") from exc
            return parsed.replace(tzinfo=self.zone).astimezone(UTC)
        if expr.name == "TO_CHAR":
            value = args[0]
            if value is None:
                return None
            if isinstance(value, datetime):
                fmt = args[1] if len(args) > 1 else "YYYY-MM-DD HH24:MI:SS"
                if not isinstance(fmt, str):
                    raise _EvalError("TO_CHAR needs a text format")
                return value.astimezone(self.zone).strftime(_strftime_format(fmt))
            return _text(value)
        if expr.name in ("NVL", "COALESCE"):
            return next((arg for arg in args if arg is not None), None)
        if expr.name == "UPPER":
            return None if args[0] is None else str(args[0]).upper()
        if expr.name == "LOWER":
            return None if args[0] is None else str(args[0]).lower()
        raise _EvalError(f"unknown function {expr.name}")


def _and(left: bool | None, right: bool | None) -> bool | None:
    if left is False or right is False:
        return False
    if left is None or right is None:
        return None
    return True


def _text(value: Any) -> str:
    """SuiteQL's wire form of a value: strings throughout (netsuite.md §2.1)."""
    if type(value) is str:  # the common case, first
        return value
    if type(value) is int:  # ids (a bool is not of type int)
        return str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return str(int(value))
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return _text(Decimal(str(value)))
    if isinstance(value, datetime):
        return f"{value.month}/{value.day}/{value.year}"  # the user's date format, not ISO
    return str(value)


@dataclass
class _Plan:
    hint: Hint
    exact: bool


def _plan(bound: _Bound, evaluator: _Evaluator) -> _Plan:
    """Derive a scan hint for the FROM table from the WHERE clause's top-level AND terms."""
    query = bound.query
    alias = query.source.alias
    table = bound.aliases[alias]
    hint = Hint(columns=bound.used.get(alias))
    leftovers: list[Expr] = []
    lower: tuple[datetime, bool] | None = None  # (moment, strict)
    keyset: list[tuple[Expr, datetime, int]] = []

    def own(expr: Expr) -> str | None:
        if isinstance(expr, Column) and bound.columns[expr][0] == alias:
            return bound.columns[expr][1]
        return None

    def constant(expr: Expr) -> Any:
        return evaluator.value(expr, {}) if _is_constant(expr) else _NOT_CONSTANT

    order = table.natural_order
    for term in conjuncts(query.where):
        if isinstance(term, Binary) and term.op in (">=", ">") and order is not None:
            value = constant(term.right)
            if own(term.left) == order[0] and isinstance(value, datetime) and lower is None:
                lower = (value, term.op == ">")
                continue
        if isinstance(term, Binary) and term.op == "OR" and order is not None:
            left, right = term.left, term.right
            if (
                isinstance(left, Binary) and left.op == ">" and own(left.left) == order[0]
                and isinstance(right, Binary) and right.op == ">" and own(right.left) == order[1]
            ):  # fmt: skip
                moment, last_id = constant(left.right), _as_int(constant(right.right))
                if isinstance(moment, datetime) and last_id is not None:
                    keyset.append((term, moment, last_id))
                    continue
        if isinstance(term, Binary) and term.op == "=":
            for column_side, value_side in ((term.left, term.right), (term.right, term.left)):
                name = own(column_side)
                if name in table.key_columns:
                    key = _as_int(constant(value_side))
                    if key is not None and name is not None:
                        _narrow(hint, name, frozenset({key}))
                        break
            else:
                leftovers.append(term)
            continue
        if isinstance(term, InList) and not term.negated:
            name = own(term.operand)
            keys = [_as_int(constant(item)) for item in term.items]
            if name in table.key_columns and name is not None and None not in keys:
                _narrow(hint, name, frozenset(k for k in keys if k is not None))
                continue
        leftovers.append(term)

    if lower is not None:
        moment, strict = lower
        hint.after, hint.inclusive = Hint.since(moment, strict=strict)
        matched = [k for k in keyset if k[1] == moment and not strict]
        if matched:
            term, _, last_id = matched[0]
            hint.after, hint.inclusive = (moment, last_id), False
            keyset.remove(matched[0])
    leftovers += [term for term, _, _ in keyset]
    return _Plan(hint, exact=not leftovers)


class _NotConstant:
    pass


_NOT_CONSTANT = _NotConstant()


def _as_int(value: Any) -> int | None:
    if type(value) is int:
        return value
    number = _number(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _narrow(hint: Hint, column: str, values: frozenset[int]) -> None:
    current = hint.equals.get(column)
    hint.equals[column] = values if current is None else current & values


class SuiteQLService:
    """Runs SuiteQL statements against an :class:`EmulatorState`.

    ``timezone`` is the zone ``TO_CHAR``/``TO_TIMESTAMP`` work in (the integration user's
    preference on a real account — UNCONFIRMED, netsuite.md §2.4); datetimes are stored in UTC.
    """

    def __init__(
        self,
        state: EmulatorState,
        *,
        timezone: str = "UTC",
        max_results: int = MAX_RESULTS,
        reference: bool = False,
    ) -> None:
        self.state = state
        self.tables = build_tables(state)
        self.zone = ZoneInfo(timezone)
        self.max_results = max_results
        self.reference = reference
        """Evaluate every expression by walking its tree, row by row (slow): the plain reading of
        the statement that the compiled evaluation must answer exactly like (tests)."""
        self._bound: OrderedDict[str, _Bound] = OrderedDict()
        self._bound_lock = threading.Lock()

    def execute(self, q: Any, params: Any, *, limit: int, offset: int) -> Page:
        """Run ``q`` with ``params`` and return the page at ``offset`` (NsError on any problem)."""
        check_paging(limit, offset, self.max_results)
        if not isinstance(q, str):
            raise invalid_query("Search error occurred: the request body needs a string 'q'.")
        if params is None:
            params = []
        if not isinstance(params, list) or any(isinstance(p, dict | list) for p in params):
            raise invalid_query("Search error occurred: 'params' must be a list of values.")
        bound = self._bind(q, len(params))
        evaluator = _Evaluator(bound, params, self.zone, reference=self.reference)
        try:
            return self._run(bound, evaluator, limit, offset)
        except _EvalError as exc:
            raise invalid_query(f"Search error occurred: {exc}.") from exc

    def _bind(self, q: str, param_count: int) -> _Bound:
        """Parse ``q``, check its placeholders against ``param_count`` values and bind it -- or
        reuse the bound statement from an earlier request: it does not depend on the values and
        is never changed, and clients send the same few statements over and over."""
        with self._bound_lock:
            cached = self._bound.get(q)
            if cached is not None:
                self._bound.move_to_end(q)
        if cached is not None:
            _check_params(cached.query, param_count)
            return cached
        try:
            query = parse(q)
        except SqlSyntaxError as exc:
            raise invalid_query(f"Search error occurred: {exc}.") from exc
        _check_params(query, param_count)
        bound = _Bound(query, self.tables)
        with self._bound_lock:
            self._bound[q] = bound
            while len(self._bound) > BOUND_CACHE_SIZE:
                self._bound.popitem(last=False)
        return bound

    def _run(self, bound: _Bound, evaluator: _Evaluator, limit: int, offset: int) -> Page:
        query = bound.query
        plan = _plan(bound, evaluator)
        table = bound.aliases[query.source.alias]
        if self._streams(bound, table):
            return self._stream(bound, evaluator, plan, limit, offset)
        envs = list(self._rows(bound, evaluator, plan))
        if query.order_by:
            envs = _sorted(envs, query.order_by, bound, evaluator)
        items = [self._project(bound, evaluator, env) for env in envs]
        if query.distinct:
            seen: set[tuple[tuple[str, Any], ...]] = set()
            unique = []
            for item in items:
                marker = tuple(sorted((k, str(v)) for k, v in item.items()))
                if marker not in seen:
                    seen.add(marker)
                    unique.append(item)
            items = unique
        total = min(len(items), self.max_results)
        page = items[offset : min(offset + limit, total)]
        return Page(page, offset, total, offset + len(page) < total)

    @staticmethod
    def _streams(bound: _Bound, table: Table) -> bool:
        query = bound.query
        if query.joins or query.distinct or table.natural_order is None:
            return False
        if not query.order_by:
            return True
        wanted = [(query.source.alias, name) for name in table.natural_order]
        got: list[tuple[str, str]] = []
        for item in query.order_by:
            if item.descending or not isinstance(item.expr, Column):
                return False
            got.append(bound.columns[item.expr])
        return got == wanted

    def _stream(self, bound: _Bound, evaluator: _Evaluator, plan: _Plan, limit: int, offset: int) -> Page:
        table = bound.aliases[bound.query.source.alias]
        alias = bound.query.source.alias
        where = bound.query.where
        known_total = table.count(plan.hint) if plan.exact else None
        matched = 0
        page: list[dict[str, Any]] = []
        where_truth = evaluator.compiled_truth(where) if where is not None else None
        for _, loader in table.scan(plan.hint):
            if matched >= self.max_results:
                break
            if plan.exact and matched < offset:
                matched += 1
                continue
            env: Env = {alias: loader()}
            passes = where_truth is None or where_truth(env) is True
            if not passes:
                if plan.exact:
                    raise unexpected_error("planner-mismatch")  # a bug here, never the client's
                continue
            matched += 1
            if matched > offset and len(page) < limit:
                page.append(self._project(bound, evaluator, env))
            if len(page) >= limit and known_total is not None:
                break
        total = min(known_total if known_total is not None else matched, self.max_results)
        return Page(page, offset, total, offset + len(page) < total)

    def _rows(self, bound: _Bound, evaluator: _Evaluator, plan: _Plan) -> Iterator[Env]:
        query = bound.query
        alias = query.source.alias
        table = bound.aliases[alias]
        where_truth = evaluator.compiled_truth(query.where) if query.where is not None else None
        for _, loader in table.scan(plan.hint):
            envs: list[Env] = [{alias: loader()}]
            for join in query.joins:
                envs = [
                    joined
                    for env in envs
                    for joined in self._join(bound, evaluator, join.table.alias, join.kind, join.on, env)
                ]
            for env in envs:
                if where_truth is None or where_truth(env) is True:
                    yield env
            if len(envs) > 10 * self.max_results:  # pragma: no cover - defensive bound
                raise invalid_query("Search error occurred: result too large.")

    def _join(
        self, bound: _Bound, evaluator: _Evaluator, alias: str, kind: str, on: Expr, env: Env
    ) -> Iterator[Env]:
        table = bound.aliases[alias]
        plan = _join_plan(bound, evaluator, alias, table, on)
        hint = Hint({}, None, True, bound.used.get(alias))
        for name, outer in plan.keys:
            key = _as_int(outer(env))
            if key is None:
                return _left(kind, alias, env)
            _narrow(hint, name, frozenset({key}))
        found = False
        results: list[Env] = []
        for _, loader in table.scan(hint):
            candidate = {**env, alias: loader()}
            if plan.on(candidate) is True:
                found = True
                results.append(candidate)
        if not found:
            return _left(kind, alias, env)
        return iter(results)

    def _project(self, bound: _Bound, evaluator: _Evaluator, env: Env) -> dict[str, Any]:
        return evaluator.projector()(env)


def _check_params(query: Query, count: int) -> None:
    if query.param_count != count:
        raise invalid_query(
            f"Search error occurred: the query has {query.param_count} parameter(s) but "
            f"{count} value(s) were bound."
        )


def _left(kind: str, alias: str, env: Env) -> Iterator[Env]:
    if kind == "LEFT":
        return iter([{**env, alias: None}])
    return iter([])


def _sorted(envs: list[Env], order_by: list[OrderItem], bound: _Bound, evaluator: _Evaluator) -> list[Env]:
    select_aliases = {item.alias: item.expr for item in bound.query.select if item.alias}
    result = list(envs)
    for item in reversed(order_by):
        expr = item.expr
        if isinstance(expr, Column) and expr.table is None and expr.name in select_aliases:
            expr = select_aliases[expr.name]
        key = _sort_key(expr, evaluator)
        result.sort(key=key, reverse=item.descending)
    return result


def _sort_key(expr: Expr, evaluator: _Evaluator) -> Callable[[Env], tuple[bool, Any]]:
    get = evaluator.compiled(expr)

    def key(env: Env) -> tuple[bool, Any]:
        value = get(env)
        if value is None:
            return True, 0
        if type(value) is int:  # as a Decimal it would sort the same
            return False, value
        number = _number(value) if not isinstance(value, str | datetime) else None
        return False, number if number is not None else value

    return key


def _join_plan(bound: _Bound, evaluator: _Evaluator, alias: str, table: Table, on: Expr) -> _JoinPlan:
    """The join's key terms and ON clause, worked out once per query (see :class:`_JoinPlan`)."""
    found = evaluator._joins.get(id(on))
    if found is not None:
        return found
    keys: list[tuple[str, Callable[[Env], Any]]] = []
    for term in conjuncts(on):
        if isinstance(term, Binary) and term.op == "=":
            for inner, outer in ((term.left, term.right), (term.right, term.left)):
                if (
                    isinstance(inner, Column)
                    and bound.columns[inner][0] == alias
                    and bound.columns[inner][1] in table.key_columns
                    and all(bound.columns[ref][0] != alias for ref in column_refs(outer))
                ):
                    keys.append((bound.columns[inner][1], evaluator.compiled(outer)))
                    break
    plan = evaluator._joins[id(on)] = _JoinPlan(tuple(keys), evaluator.compiled_truth(on))
    return plan


def check_paging(limit: int, offset: int, max_results: int = MAX_RESULTS) -> None:
    """NetSuite's paging rules for the query service and record collections."""
    if not 1 <= limit <= MAX_LIMIT:
        raise NsError(
            400,
            "INVALID_PARAMETER",
            f"Invalid 'limit' parameter value: {limit}. The value must be between 1 and {MAX_LIMIT}.",
        )
    if offset < 0 or offset % limit:
        raise NsError(
            400,
            "INVALID_PARAMETER",
            f"Invalid 'offset' parameter value: {offset}. The offset must be a multiple of the limit.",
        )
    if offset >= max_results:
        raise NsError(
            400,
            "INVALID_PARAMETER",
            f"Invalid 'offset' parameter value: {offset}. At most {max_results} results can be "
            "read for one query; narrow the query instead.",
        )
