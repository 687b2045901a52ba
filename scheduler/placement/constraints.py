"""Label constraints: the parser for `disk==ssd`-style strings and the matching rule."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

EQ, NE, IN, NOT_IN, EXISTS, NOT_EXISTS = "==", "!=", "in", "not in", "exists", "not exists"
OPS = (EQ, NE, IN, NOT_IN, EXISTS, NOT_EXISTS)

_KEY = r"[A-Za-z0-9][A-Za-z0-9_./-]*"
_VALUE = r"[A-Za-z0-9_./:-]+"
_KEY_RE = re.compile(rf"^{_KEY}$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")
_COMPARE_RE = re.compile(rf"^({_KEY})\s*(==|!=)\s*(.*)$")
_SET_RE = re.compile(rf"^({_KEY})\s+(not\s+in|in)\b\s*(.*)$")
_FORMS = "expected 'key==value', 'key!=value', 'key in (a,b)', 'key not in (a,b)', 'key' or '!key'"


@dataclass(frozen=True, slots=True)
class Constraint:
    """One condition on a host's labels. `!=` and `not in` also match hosts without the label."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == EQ:
            return value == self.values[0]
        if self.op == NE:
            return value != self.values[0]
        if self.op == IN:
            return value in self.values
        if self.op == NOT_IN:
            return value not in self.values
        if self.op == EXISTS:
            return value is not None
        return value is None

    def __str__(self) -> str:
        if self.op in (EQ, NE):
            return f"{self.key}{self.op}{self.values[0]}"
        if self.op in (IN, NOT_IN):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return self.key if self.op == EXISTS else f"!{self.key}"


def parse_constraint(text: str) -> Constraint:
    """Parse one constraint string; raises ValueError naming the input and the accepted forms."""
    source = text.strip()

    def fail(why: str) -> ValueError:
        return ValueError(f"invalid constraint {text!r}: {why}; {_FORMS}")

    if not source:
        raise fail("it is empty")
    if source.startswith("!") and "=" not in source:
        key = source[1:].strip()
        if not _KEY_RE.match(key):
            raise fail(f"{key!r} is not a valid label key")
        return Constraint(key, NOT_EXISTS)
    if compare := _COMPARE_RE.match(source):
        key, op, value = compare.group(1), compare.group(2), compare.group(3).strip()
        if not value:
            raise fail(f"no value after {op!r}")
        if not _VALUE_RE.match(value):
            raise fail(f"{value!r} is not a valid label value")
        return Constraint(key, op, (value,))
    if members := _SET_RE.match(source):
        key, op, rest = members.group(1), " ".join(members.group(2).split()), members.group(3).strip()
        if not (rest.startswith("(") and rest.endswith(")")):
            raise fail(f"the values after {op!r} must be in parentheses")
        values = tuple(value.strip() for value in rest[1:-1].split(","))
        if values == ("",):
            raise fail("the value list is empty")
        for value in values:
            if not _VALUE_RE.match(value):
                raise fail(f"{value!r} is not a valid label value")
        return Constraint(key, op, tuple(dict.fromkeys(values)))
    if _KEY_RE.match(source):
        return Constraint(source, EXISTS)
    if re.match(rf"^{_KEY}\s*=[^=]", source):
        raise fail("use '==' to compare, not '='")
    raise fail("unrecognised syntax")


def parse_constraints(items: Iterable[str | Constraint]) -> tuple[Constraint, ...]:
    """Parse strings and pass through ready Constraint objects, keeping order."""
    return tuple(item if isinstance(item, Constraint) else parse_constraint(item) for item in items)
