"""Where a host pulls an image from: a healthy mirror in its own IDC that holds the image's
digest, else a healthy mirror elsewhere that holds it, else the primary.

`pull_sources` is pure; `read_pull_table` takes the snapshot it decides on (mirrors, their
holdings and the primary's digests of the images about to be pulled), read once per round
before the engines are called, so no lane opens a database session.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select, tuple_

from berth import db
from berth.models import MirrorTag, Registry, Repository, Tag
from registry_sync.registries import PRIMARY


@dataclass(frozen=True)
class Mirror:
    name: str
    host: str  # "host:port", as an engine names the registry in an image reference
    idc: str | None
    healthy: bool
    holds: frozenset = frozenset()  # {(repository, tag, digest)}


@dataclass(frozen=True)
class Source:
    name: str  # a mirror's name, or "primary"
    host: str


@dataclass(frozen=True)
class PullTable:
    """The snapshot `pull_sources` decides on."""

    mirrors: tuple[Mirror, ...] = ()
    digests: dict = field(default_factory=dict)  # {(repository, tag): digest} on the primary


def split_reference(path: str) -> tuple[str, str | None, str | None]:
    """'proj/repo:tag' -> ('proj/repo', 'tag', None); 'proj/repo@sha256:..' -> (.., None, digest)."""
    if "@" in path:
        repository, _, digest = path.partition("@")
        return repository, None, digest
    repository, _, tag = path.rpartition(":")
    if not repository or "/" in tag:
        return path, "latest", None
    return repository, tag, None


def pull_sources(host_idc: str | None, path: str, table: PullTable, primary: Source
                 ) -> list[Source]:
    """The sources to try in order for `path` (an image reference without its registry).

    A mirror is a candidate only when it is healthy and holds the tag at the digest the
    primary has now: a stale mirror would start the old image under the new one's name. An
    image named by digest comes from the primary, since a digest reference pulled from a
    mirror cannot be re-tagged under the primary's name."""
    repository, tag, digest = split_reference(path)
    if tag is None:
        return [primary]
    digest = table.digests.get((repository, tag))
    if digest is None:
        return [primary]
    holders = [m for m in table.mirrors if m.healthy and (repository, tag, digest) in m.holds]
    near = sorted((m for m in holders if host_idc and m.idc == host_idc), key=lambda m: m.name)
    far = sorted((m for m in holders if m not in near), key=lambda m: m.name)
    return [Source(m.name, m.host) for m in near + far] + [primary]


def registry_host(url: str) -> str:
    return urlsplit(url).netloc or url


def read_pull_table(paths: set[str]) -> PullTable:
    """The mirrors, and the digests of `paths` (repository:tag) on the primary and on each
    mirror; only the rows those images need, so the read stays small at fleet size."""
    wanted = {(r, t) for r, t, _ in map(split_reference, paths) if t is not None}
    if not wanted:
        return PullTable()
    mirrors = db.session.scalars(select(Registry).where(Registry.role == "mirror")).all()
    if not mirrors:
        return PullTable()
    keys = list(wanted)
    digests = {(repository, tag): digest for repository, tag, digest in db.session.execute(
        select(Repository.name, Tag.name, Tag.digest).join(Tag.repository)
        .where(tuple_(Repository.name, Tag.name).in_(keys)))}
    holds: dict[int, set] = {}
    for registry_id, repository, tag, digest in db.session.execute(
            select(MirrorTag.registry_id, MirrorTag.repository, MirrorTag.tag, MirrorTag.digest)
            .where(tuple_(MirrorTag.repository, MirrorTag.tag).in_(keys))):
        holds.setdefault(registry_id, set()).add((repository, tag, digest))
    return PullTable(
        tuple(Mirror(m.name, registry_host(m.url), m.idc, bool(m.healthy),
                     frozenset(holds.get(m.id, ()))) for m in mirrors),
        digests)
