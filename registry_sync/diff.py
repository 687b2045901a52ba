"""The sync plan: a pure comparison of tag->digest maps, and the reader that builds one."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .client import SyncClient

Tags = dict[tuple[str, str], str]  # (repository, tag) -> manifest digest


@dataclasses.dataclass(frozen=True)
class SyncPlan:
    copies: list[tuple[str, str]]
    deletes: list[tuple[str, str]]
    up_to_date: int


def plan_sync(source: Tags, target: Tags, selects: Callable[[str, str], bool],
              propagate_deletes: bool) -> SyncPlan:
    chosen = {key: digest for key, digest in source.items() if selects(*key)}
    copies = sorted(key for key, digest in chosen.items() if target.get(key) != digest)
    deletes = sorted(key for key in target if key not in source and selects(*key)) if propagate_deletes else []
    return SyncPlan(copies, deletes, len(chosen) - len(copies))


def read_tags(client: SyncClient, repositories: list[str], parallelism: int = 16) -> Tags:
    """One tags list per repository and one HEAD per tag, in a bounded pool: HEAD is cheap,
    round trips are what cost, so they overlap."""
    with ThreadPoolExecutor(parallelism) as pool:
        listed = dict(zip(repositories, pool.map(client.tags, repositories)))
        keys = [(repo, tag) for repo, tags in listed.items() for tag in tags]
        digests = pool.map(lambda key: client.head_manifest(*key), keys)
        return {key: digest for key, digest in zip(keys, digests) if digest}
