"""One page of a list that grows with the fleet (hosts, applications): `?page=N`, checked, and
what the pager partial (templates/_pager.html) needs to draw itself."""
from __future__ import annotations

import math
from dataclasses import dataclass

from flask import request

from berth.errors import InvalidInput


@dataclass(frozen=True)
class Page:
    number: int     # 1-based, never past the last page
    per_page: int
    total: int      # rows over all pages

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 on an empty list)."""
        return min(self.total, self.offset + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.offset + self.per_page)


def requested_page() -> int:
    """`?page=` from the query string (1 when absent); anything but a whole number from 1
    is a 400 that says so."""
    raw = request.args.get("page", "").strip()
    if not raw:
        return 1
    # isdigit alone lets '²' through to int(), which refuses it (a 500, not a 400).
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise InvalidInput(f"page must be a whole number from 1, not {raw!r}")
    return int(raw)


def page_of(total: int, per_page: int) -> Page:
    """The requested page of `total` rows; a page past the end is the last one, so a list
    that shrank under a user's feet (hosts removed) still shows rows."""
    pages = max(1, math.ceil(total / per_page))
    return Page(number=min(requested_page(), pages), per_page=per_page, total=total)
