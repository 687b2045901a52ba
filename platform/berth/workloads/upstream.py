"""Service discovery rendered as an nginx `upstream` block, for a proxy in front of a service.

Pure: endpoints in, configuration text out. Regenerate it whenever the index changes (the
API's blocking query says when) and reload nginx.
"""
from __future__ import annotations

# nginx refuses an upstream without servers; a server marked down keeps the block valid and
# makes nginx answer 502 until a healthy instance appears. Port 9 (discard) never serves.
NO_INSTANCE = "server 127.0.0.1:9 down;  # no healthy instance yet"


def upstream_name(application: str, service: str) -> str:
    """`shop-api`: application and service names are lowercase letters, digits and '-'."""
    return f"{application}-{service}"


def render_upstream(application: str, service: str, endpoints: list[str], index: int) -> str:
    servers = [f"server {endpoint};" for endpoint in sorted(endpoints)] or [NO_INSTANCE]
    lines = [f"# Berth discovery: {application}/{service}, index {index}. Generated; do not edit.",
             f"upstream {upstream_name(application, service)} {{",
             *(f"    {server}" for server in servers),
             "}"]
    return "\n".join(lines) + "\n"
