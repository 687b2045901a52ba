"""The autoscaler, unattended: per service with a policy, the CPU the instances reported
goes through the pure decision (scheduler.orchestration.autoscale), and a changed replica
count is applied as an operator's scale would be, by the actor "autoscaler".
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import fields

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from berth import audit, db
from berth.clock import utcnow
from berth.errors import InvalidInput
from berth.models import Application, AutoscalingPolicy, ContainerInstance, Release, Service
from berth.workloads import quotas
from berth.workloads import services as workloads
from berth.workloads.definitions import MAX_REPLICAS
from scheduler.orchestration import autoscale
from scheduler.orchestration.rollout import ACTIVE_STATUSES
from scheduler.orchestration.state import READY_HEALTH

ACTOR = "autoscaler"
# What an operator may set; a new policy starts from the model's column defaults.
SETTINGS = ("enabled", "min_replicas", "max_replicas", "target_cpu_percent", "cpu_basis",
            "scale_up_factor", "cooldown_s", "scale_down_stabilization_s", "tolerance")


def settings_of(service: Service) -> dict:
    """The service's policy settings, or the defaults a new policy would have."""
    row = service.autoscaling
    columns = AutoscalingPolicy.__table__.columns
    return {name: getattr(row, name) if row else columns[name].default.arg for name in SETTINGS}


def pure_policy(row: AutoscalingPolicy) -> autoscale.AutoscalingPolicy:
    names = {f.name for f in fields(autoscale.AutoscalingPolicy)}
    return autoscale.AutoscalingPolicy(**{name: getattr(row, name) for name in names})


def set_policy(service: Service, changes: dict, *, actor: str) -> AutoscalingPolicy:
    """Create or change the service's policy; checked whole before anything is stored."""
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    wanted = {**settings_of(service), **changes}
    if not isinstance(wanted["enabled"], bool):
        raise InvalidInput("enabled must be true or false")
    if wanted["max_replicas"] > MAX_REPLICAS:
        raise InvalidInput(f"max_replicas must be at most {MAX_REPLICAS}")
    for name in ("cooldown_s", "scale_down_stabilization_s"):
        if wanted[name] < 0:
            raise InvalidInput(f"{name} must be 0 or more seconds")
    try:
        autoscale.AutoscalingPolicy(**{k: v for k, v in wanted.items() if k != "enabled"})
    except (ValueError, TypeError) as error:
        raise InvalidInput(str(error)) from error
    row = service.autoscaling
    if row is None:
        row = service.autoscaling = AutoscalingPolicy(recommendations=[])
    for name, value in wanted.items():
        setattr(row, name, value)
    audit.record("service.autoscaling", f"{_subject(service)}: autoscaling "
                 + ("on" if wanted["enabled"] else "off") + f", {wanted['min_replicas']}-"
                 f"{wanted['max_replicas']} replicas at {wanted['target_cpu_percent']:g}% CPU "
                 f"of {'the limit' if wanted['cpu_basis'] == 'limit' else 'one core'}",
                 subject_type="service", subject=_subject(service), actor=actor)
    db.session.flush()
    return row


def remove_policy(service: Service, *, actor: str) -> None:
    row = service.autoscaling
    if row is not None:
        db.session.delete(row)
        service.autoscaling = None
        audit.record("service.autoscaling", f"{_subject(service)}: autoscaling removed",
                     subject_type="service", subject=_subject(service), actor=actor)


def autoscale_all() -> dict[str, str]:
    """One decision per enabled policy; returns what each decided."""
    now = utcnow()
    enabled = (select(AutoscalingPolicy).join(Service).join(Application)
               .where(AutoscalingPolicy.enabled.is_(True), Application.deleting_since.is_(None)))
    # Everything a decision reads in three SELECTs for all policies, not a few per service,
    # and the running instances as plain rows: at 1,000 services of 10 replicas, loading
    # 10,000 instance objects took longer than every decision together (benchmarks/autoscale.py).
    rows = db.session.scalars(enabled.options(
        selectinload(AutoscalingPolicy.service).selectinload(Service.application))).all()
    running: dict[int, list] = defaultdict(list)
    for instance in db.session.execute(
            select(ContainerInstance.service_id, ContainerInstance.name, ContainerInstance.health,
                   ContainerInstance.cpu_percent)
            .where(ContainerInstance.state == "running",
                   ContainerInstance.service_id.in_(enabled.with_only_columns(Service.id)))):
        running[instance.service_id].append(instance)
    releasing = set(db.session.scalars(select(Release.service_id).where(
        Release.status.in_(ACTIVE_STATUSES))))
    return {_subject(row.service): _hold(row, now) if row.service_id in releasing
            else _decide(row, running[row.service_id], now) for row in rows}


def _hold(row: AutoscalingPolicy, now) -> str:
    """A release owns the slots while it runs; the autoscaler acts on the new revision after."""
    row.last_decision, row.last_decided_at = "holding: a release is under way", now
    return row.last_decision


def observed(service: Service, running: list) -> autoscale.Observed:
    """The service as the pure decision sees it; `running` are its running instances (rows
    with name, health and cpu_percent). Only the ready ones carry load."""
    ready = [i for i in running if i.health in READY_HEALTH]
    changed = service.application.deploy_started_at
    return autoscale.Observed(
        desired=service.replicas,
        ready=[i.name for i in ready],
        samples=[autoscale.Sample(i.name, i.cpu_percent, service.cpus) for i in ready
                 if i.cpu_percent is not None],
        running=len(running),
        unschedulable=(service.status_detail or "no host fits") if service.status == "unschedulable" else None,
        changed_at=changed.timestamp() if changed else None)


def _decide(row: AutoscalingPolicy, running: list, now) -> str:
    service, policy = row.service, pure_policy(row)
    at = now.timestamp()
    recent = [autoscale.Recommendation(t, n) for t, n in row.recommendations or []
              if t >= at - policy.scale_down_stabilization_s]
    decision = autoscale.decide(policy, observed(service, running), at,
                                row.last_scaled_at.timestamp() if row.last_scaled_at else None,
                                recent)
    if decision.recommendation is not None:
        recent.append(autoscale.Recommendation(at, decision.recommendation))
    row.recommendations = [[r.at, r.replicas] for r in recent]
    desired, reason = _within_quota(service, decision.desired_replicas, decision.reason)
    row.last_decision, row.last_decided_at = reason[:255], now
    if desired != service.replicas:
        workloads.scale(service, desired, actor=ACTOR, reason=reason)
        if decision.direction == autoscale.UP:
            row.last_scaled_at = now
    return reason


def _within_quota(service: Service, desired: int, reason: str) -> tuple[int, str]:
    """A scale-up stops at what the project's quota leaves for this service, and says so."""
    if desired <= service.replicas:
        return desired, reason
    project = service.application.project
    mine = quotas.of_service(service.replicas, service.cpus, service.memory)
    allowed = quotas.most_replicas(quotas.Quota.of(project), quotas.usage(project) - mine,
                                   service.cpus, service.memory)
    if allowed is None or desired <= allowed:
        return desired, reason
    held = max(service.replicas, allowed)
    return held, (f"{reason}; stopped at {held} replicas by project {project.name}'s quota "
                  f"(wanted {desired})")


def _subject(service: Service) -> str:
    return f"{service.application.name}/{service.name}"
