"""The `scope` parameter of a registry token request: parsing and rendering.

Grammar (distribution's token scope spec): `type[(class)]:name:action[,action...]`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TYPE_RE = re.compile(r"(?P<type>[a-z0-9]+)(?:\((?P<klass>[a-z0-9]+)\))?")
# The spec says actions are /[a-z]*/; the registry itself asks for `*` on the catalog.
_ACTION_RE = re.compile(r"[a-z]+|\*")
# Loose on purpose: a name may carry a host and port (`host:5000/proj/app`); the
# policy applies the strict repository grammar before granting anything.
_NAME_RE = re.compile(r"[A-Za-z0-9._/:-]+")
_NAME_MAX = 512


@dataclass(frozen=True)
class Scope:
    type: str
    klass: str | None
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        resource_type = f"{self.type}({self.klass})" if self.klass else self.type
        return f"{resource_type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scope(text: str) -> Scope:
    """One `type[(class)]:name:actions` scope; ValueError says what is wrong with it."""
    # The name may itself contain ':' (a registry host with a port), so the type is
    # split off the front and the actions off the back, never a plain split(':').
    type_part, sep, rest = text.partition(":")
    if not sep:
        raise ValueError(f"scope {text!r} is not of the form type:name:actions")
    name, sep, actions_part = rest.rpartition(":")
    if not sep or not name:
        raise ValueError(f"scope {text!r} is not of the form type:name:actions")

    type_match = _TYPE_RE.fullmatch(type_part)
    if not type_match:
        raise ValueError(
            f"scope {text!r}: resource type must be lowercase letters and digits,"
            " optionally followed by a (class)"
        )
    if len(name) > _NAME_MAX or not _NAME_RE.fullmatch(name):
        raise ValueError(f"scope {text!r}: resource name has characters outside [A-Za-z0-9._/:-]")

    actions = actions_part.split(",")
    bad = [action for action in actions if not _ACTION_RE.fullmatch(action)]
    if bad:
        raise ValueError(
            f"scope {text!r}: actions must be comma-separated lowercase words or '*'"
        )
    return Scope(type_match["type"], type_match["klass"], name, frozenset(actions))


def parse_scopes(params: Iterable[str]) -> list[Scope]:
    """Every scope of a request: repeated `scope` params, each possibly space-separated.

    Empty params are skipped: `docker login` asks with no scope at all.
    """
    return [parse_scope(item) for param in params for item in param.split()]
