"""Project quotas: what a project's applications may ask for in all, each service counted
as replicas x its limits (CPU cores, memory) and its replicas. Checked when an application
is defined, scaled (by an operator or the autoscaler) or released with other limits; a
release's surge is not counted (it lasts a batch)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from berth import db
from berth.errors import Conflict
from berth.models import Application, Project, Service

MiB = 2**20


@dataclass(frozen=True)
class Usage:
    cpus: float = 0.0
    memory: int = 0
    replicas: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpus + other.cpus, self.memory + other.memory, self.replicas + other.replicas)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpus - other.cpus, self.memory - other.memory, self.replicas - other.replicas)


@dataclass(frozen=True)
class Quota:
    cpus: float | None = None
    memory: int | None = None
    replicas: int | None = None

    @classmethod
    def of(cls, project: Project) -> Quota:
        return cls(project.quota_cpus, project.quota_memory, project.quota_replicas)


def of_service(replicas: int, cpus: float, memory: int) -> Usage:
    return Usage(replicas * cpus, replicas * memory, replicas)


# -- pure decisions ---------------------------------------------------------------------------


def excess(quota: Quota, used: Usage, change: Usage) -> list[str]:
    """What adding `change` to the project's use would take over a quota, with the figures.
    Only what grows counts: a change that lowers a use is allowed even over a quota that was
    lowered since."""
    wanted, over = used + change, []
    if quota.cpus is not None and change.cpus > 0 and wanted.cpus > quota.cpus + 1e-9:
        over.append(f"CPU {wanted.cpus:g} of {quota.cpus:g} cores (now {used.cpus:g})")
    if quota.memory is not None and change.memory > 0 and wanted.memory > quota.memory:
        over.append(f"memory {wanted.memory / MiB:.0f} of {quota.memory / MiB:.0f} MiB "
                    f"(now {used.memory / MiB:.0f})")
    if quota.replicas is not None and change.replicas > 0 and wanted.replicas > quota.replicas:
        over.append(f"replicas {wanted.replicas} of {quota.replicas} (now {used.replicas})")
    return over


def most_replicas(quota: Quota, used_by_others: Usage, cpus: float, memory: int) -> int | None:
    """The most replicas one service (of these limits) may have beside the project's other
    use; None when nothing caps it."""
    caps = []
    if quota.cpus is not None and cpus > 0:
        caps.append(int((quota.cpus - used_by_others.cpus + 1e-9) // cpus))
    if quota.memory is not None and memory > 0:
        caps.append((quota.memory - used_by_others.memory) // memory)
    if quota.replicas is not None:
        caps.append(quota.replicas - used_by_others.replicas)
    return max(0, min(caps)) if caps else None


# -- against the database ---------------------------------------------------------------------


def usage(project: Project) -> Usage:
    """What the project's applications ask for now (those being torn down count until gone)."""
    total = Usage()
    for replicas, cpus, memory in db.session.execute(
            select(Service.replicas, Service.cpus, Service.memory).join(Application)
            .where(Application.project_id == project.id)):
        total += of_service(replicas, cpus, memory)
    return total


def set_quota(project: Project, *, actor, cpus=..., memory=..., replicas=...) -> None:
    """System admins set a project's quotas (None lifts one; a field left out stays). A
    quota below today's use is allowed: nothing is stopped, but nothing more may grow."""
    from berth import audit
    from berth.errors import Forbidden, InvalidInput

    if not actor.is_admin:
        raise Forbidden("only system administrators set project quotas")
    changes = {}
    for name, value, kind in (("quota_cpus", cpus, (int, float)), ("quota_memory", memory, int),
                              ("quota_replicas", replicas, int)):
        if value is ...:
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind) or value < 0):
            raise InvalidInput(f"{name} must be a number of at least 0, or null for no quota")
        if getattr(project, name) != value:
            changes[name] = {"from": getattr(project, name), "to": value}
            setattr(project, name, value)
    if changes:
        audit.record("project.quota", f"{project.name}: quotas changed ({', '.join(changes)})",
                     subject_type="project", subject=project.name, actor=actor.username, **changes)


def check(project: Project, change: Usage, what: str) -> None:
    """Refuse `what` (409, with the figures) if adding `change` goes over a quota."""
    over = excess(Quota.of(project), usage(project), change)
    if over:
        raise Conflict(f"{what} would exceed project {project.name}'s quota: {'; '.join(over)}")
