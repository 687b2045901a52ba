"""Berth's default Prometheus alert rules over the berth_* series it exports, plus one P999 and
one error-ratio rule per service that declares a metrics endpoint.

`build_rules` is a pure function of plain data; `render_rules` gathers that data from the
database and the configuration and returns the rules file as YAML.
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml

from berth.monitoring import promql

SERVICE_KEYS = ("application", "service", "project")


@dataclass(frozen=True)
class RuleSettings:
    """How long each condition must hold before it fires, and the default thresholds."""

    for_s: float = 120.0
    at_max_for_s: float = 300.0
    latency_for_s: float = 300.0
    p999_s: float = 1.0
    error_ratio: float = 0.05
    # A rollback alerts while it is this recent.
    rolled_back_window_s: float = 900.0

    @classmethod
    def from_config(cls, config) -> "RuleSettings":
        defaults = cls()
        return cls(
            for_s=getattr(config, "alert_for_s", defaults.for_s),
            at_max_for_s=getattr(config, "alert_at_max_for_s", defaults.at_max_for_s),
            latency_for_s=getattr(config, "alert_latency_for_s", defaults.latency_for_s),
            p999_s=getattr(config, "alert_p999_s", defaults.p999_s),
            error_ratio=getattr(config, "alert_error_ratio", defaults.error_ratio),
        )


@dataclass(frozen=True)
class ServiceTarget:
    """A service with a metrics endpoint and its effective thresholds."""

    application: str
    service: str
    metrics: promql.MetricsSpec
    p999_s: float
    error_ratio: float
    enabled: bool = True


def duration(seconds: float) -> str:
    """A Prometheus duration: 300 -> "5m", 90 -> "90s", 0.5 -> "500ms"."""
    if seconds <= 0:
        return "0s"
    if seconds != int(seconds):
        return f"{int(round(seconds * 1000))}ms"
    seconds = int(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _rule(name: str, expr: str, for_s: float, severity: str, summary: str,
          labels: dict | None = None, description: str | None = None) -> dict:
    rule = {"alert": name, "expr": expr}
    if for_s > 0:
        rule["for"] = duration(for_s)
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {"summary": summary}
    if description:
        rule["annotations"]["description"] = description
    return rule


def _replicas(state: str) -> str:
    return f'max by ({", ".join(SERVICE_KEYS)}) (berth_service_replicas{{state="{state}"}})'


def fleet_rules(settings: RuleSettings) -> list[dict]:
    """The rules every installation gets, over Berth's own series."""
    app_svc = "{{ $labels.application }}/{{ $labels.service }}"
    healthy, desired = _replicas("healthy"), _replicas("desired")
    return [
        _rule("BerthHostDown", "berth_host_up == 0", settings.for_s, "critical",
              "Host {{ $labels.host }} is down",
              description="Berth cannot reach the Docker engine of host {{ $labels.host }} "
                          "(pool {{ $labels.pool }}, IDC {{ $labels.idc }})."),
        _rule("BerthServiceDegraded",
              f"({healthy} < {desired}) and {healthy} > 0", settings.for_s, "warning",
              f"Service {app_svc} is degraded: {{{{ $value }}}} healthy replicas, "
              "fewer than desired"),
        _rule("BerthServiceFailing",
              f"({healthy} == 0) and {desired} > 0", settings.for_s, "critical",
              f"Service {app_svc} is failing: no healthy replica"),
        _rule("BerthAutoscalerAtMax", "berth_autoscaler_at_max == 1", settings.at_max_for_s,
              "warning",
              f"Autoscaler of {app_svc} is at its maximum replicas",
              description="It has wanted more replicas than its maximum for "
                          f"{duration(settings.at_max_for_s)}; raise the maximum or the quota."),
        _rule("BerthQuotaReached", "berth_project_quota_reached == 1", settings.for_s, "warning",
              "Project {{ $labels.project }} reached its {{ $labels.resource }} quota"),
        _rule("BerthReleaseRolledBack",
              "sum by (application, service) (increase(berth_releases_total"
              f'{{outcome="rolled_back"}}[{duration(settings.rolled_back_window_s)}])) > 0',
              0, "warning",
              f"A release of {app_svc} was rolled back"),
    ]


def service_rules(targets: list[ServiceTarget], settings: RuleSettings) -> list[dict]:
    """P999 and error-ratio rules for each service with a metrics endpoint, in name order."""
    rules = []
    by = ("application", "service")
    for target in sorted(targets, key=lambda t: (t.application, t.service)):
        if not target.enabled:
            continue
        sel = promql.selector(target.application, target.service)
        labels = {"application": target.application, "service": target.service}
        name = f"{target.application}/{target.service}"
        rules.append(_rule(
            "BerthServiceP999High",
            f"{promql.p999_seconds(target.metrics, sel, by=by)} > {target.p999_s:g}",
            settings.latency_for_s, "warning",
            f"P999 of {name} is {{{{ $value | humanizeDuration }}}}, above {target.p999_s:g}s",
            labels={**labels, "threshold": f"{target.p999_s:g}"}))
        rules.append(_rule(
            "BerthServiceErrorRatioHigh",
            f"({promql.error_ratio(target.metrics, sel, by=by)}) > {target.error_ratio:g}",
            settings.latency_for_s, "warning",
            f"Error ratio of {name} is {{{{ $value | humanizePercentage }}}}, above "
            f"{target.error_ratio * 100:g}%",
            labels={**labels, "threshold": f"{target.error_ratio:g}"}))
    return rules


def build_rules(targets: list[ServiceTarget], settings: RuleSettings) -> dict:
    groups = [{"name": "berth-fleet", "rules": fleet_rules(settings)}]
    per_service = service_rules(targets, settings)
    if per_service:
        groups.append({"name": "berth-services", "rules": per_service})
    return {"groups": groups}


def to_yaml(rules: dict) -> str:
    return "# Rendered by Berth (berth monitoring config); edits are overwritten.\n" + \
        yaml.safe_dump(rules, sort_keys=False, default_flow_style=False, width=1000)


def service_targets(session, settings: RuleSettings) -> list[ServiceTarget]:
    """Services that declare `metrics`, with their own thresholds or the defaults."""
    from sqlalchemy import select

    from berth.models import Application, Service
    from berth.models.alerts import AlertThreshold

    rows = session.execute(
        select(Application.name, Service.name, Service.metrics, AlertThreshold)
        .join(Service.application)
        .outerjoin(AlertThreshold, AlertThreshold.service_id == Service.id)
    ).all()
    targets = []
    for app_name, service_name, metrics, threshold in rows:
        spec = promql.MetricsSpec.from_json(metrics)
        if spec is None:
            continue
        targets.append(ServiceTarget(
            application=app_name, service=service_name, metrics=spec,
            p999_s=(threshold.p999_s if threshold and threshold.p999_s else settings.p999_s),
            error_ratio=(threshold.error_ratio if threshold and threshold.error_ratio
                         else settings.error_ratio),
            enabled=threshold.enabled if threshold else True))
    return targets


def render_rules(session, config) -> str:
    """The rules.yml Prometheus loads (rule_files), from the database and the configuration."""
    settings = RuleSettings.from_config(config)
    return to_yaml(build_rules(service_targets(session, settings), settings))
