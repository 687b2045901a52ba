"""How far a mirror is behind: what its enabled policies send there, against what it holds."""
from __future__ import annotations

from sqlalchemy import select

from berth import db
from berth.models.registries import MirrorTag, Registry, ReplicationPolicy
from registry_sync.policies import catalogue_tags, selects


def lag(registry: Registry) -> dict[str, int]:
    chosen = list(db.session.scalars(select(ReplicationPolicy).where(
        ReplicationPolicy.enabled.is_(True),
        ReplicationPolicy.mirrors.any(Registry.id == registry.id))))
    wanted = {(r, t): d for r, t, d in catalogue_tags()
              if any(selects(p, r, t) for p in chosen)}
    held = {(m.repository, m.tag): m.digest for m in db.session.scalars(
        select(MirrorTag).where(MirrorTag.registry_id == registry.id))}
    # Deletable: held, selected, gone from the primary, and a policy propagates deletes.
    deleting = [p for p in chosen if p.propagate_deletes]
    return {
        "missing": sum(1 for key in wanted if key not in held),
        "outdated": sum(1 for key, d in wanted.items() if key in held and held[key] != d),
        "deletable": sum(1 for key in held if key not in wanted
                         and any(selects(p, *key) for p in deleting)),
        "in_sync": sum(1 for key, d in wanted.items() if held.get(key) == d),
    }
