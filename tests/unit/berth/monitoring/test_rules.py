"""Berth's default alert rules and the Alertmanager configuration it renders."""
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from berth.config import Config
from berth.monitoring import promql
from berth.monitoring.alertmanager import build_alertmanager, render_alertmanager, write_private
from berth.monitoring.rules import (RuleSettings, ServiceTarget, build_rules, duration,
                                    to_yaml)

SHORT = RuleSettings(for_s=5, at_max_for_s=7, latency_for_s=3, p999_s=1.0, error_ratio=0.05)
WEB = ServiceTarget("shop", "web", promql.MetricsSpec(port=8080), p999_s=0.25, error_ratio=0.01)
API = ServiceTarget("shop", "api", promql.MetricsSpec(port=9000, histogram="req_seconds",
                                                      status_label="status"), 2.0, 0.1)


def _by_name(rules: dict) -> dict:
    return {(r["alert"], r["labels"].get("service")): r
            for group in rules["groups"] for r in group["rules"]}


@pytest.mark.parametrize("seconds,text", [
    (300, "5m"), (120, "2m"), (90, "90s"), (3600, "1h"), (14400, "4h"), (5, "5s"),
    (0.5, "500ms"), (0, "0s"),
])
def test_durations(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("alert,expr_part,for_,severity,summary_part", [
    ("BerthHostDown", "berth_host_up == 0", "5s", "critical", "Host {{ $labels.host }}"),
    ("BerthServiceDegraded", '< max by (application, service, project) '
     '(berth_service_replicas{state="desired"})', "5s", "warning", "is degraded"),
    ("BerthServiceFailing", '(berth_service_replicas{state="healthy"}) == 0', "5s", "critical",
     "is failing"),
    ("BerthAutoscalerAtMax", "berth_autoscaler_at_max == 1", "7s", "warning", "maximum"),
    ("BerthQuotaReached", "berth_project_quota_reached == 1", "5s", "warning", "quota"),
    ("BerthReleaseRolledBack", 'increase(berth_releases_total{outcome="rolled_back"}', None,
     "warning", "rolled back"),
])
def test_fleet_rules(alert, expr_part, for_, severity, summary_part):
    rule = _by_name(build_rules([], SHORT))[(alert, None)]
    assert expr_part in rule["expr"]
    assert rule.get("for") == for_
    assert rule["labels"]["severity"] == severity
    assert summary_part in rule["annotations"]["summary"]


def test_degraded_and_failing_do_not_overlap():
    rules = _by_name(build_rules([], SHORT))
    assert rules[("BerthServiceDegraded", None)]["expr"].endswith(
        '(berth_service_replicas{state="healthy"}) > 0')
    assert rules[("BerthServiceFailing", None)]["expr"].endswith(
        '(berth_service_replicas{state="desired"}) > 0')


@pytest.mark.parametrize("target,alert,expr", [
    (WEB, "BerthServiceP999High",
     promql.p999_seconds(WEB.metrics, promql.selector("shop", "web"),
                         by=("application", "service")) + " > 0.25"),
    (WEB, "BerthServiceErrorRatioHigh",
     "(" + promql.error_ratio(WEB.metrics, promql.selector("shop", "web"),
                              by=("application", "service")) + ") > 0.01"),
    (API, "BerthServiceP999High", "req_seconds_bucket"),
    (API, "BerthServiceErrorRatioHigh", 'status=~"5.."'),
])
def test_service_rules(target, alert, expr):
    rule = _by_name(build_rules([WEB, API], SHORT))[(alert, target.service)]
    assert expr in rule["expr"]
    assert rule["for"] == "3s"
    assert rule["labels"]["application"] == "shop"
    assert rule["labels"]["severity"] == "warning"
    assert f"shop/{target.service}" in rule["annotations"]["summary"]


def test_disabled_service_and_no_services_have_no_service_group():
    off = ServiceTarget("shop", "web", WEB.metrics, 1.0, 0.05, enabled=False)
    assert [g["name"] for g in build_rules([off], SHORT)["groups"]] == ["berth-fleet"]
    assert [g["name"] for g in build_rules([], SHORT)["groups"]] == ["berth-fleet"]


def test_every_rule_has_severity_and_summary():
    for group in build_rules([WEB, API], SHORT)["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"]


def _config(tmp_path, **env) -> Config:
    return Config.from_env({"BERTH_INSTANCE": str(tmp_path / "instance"),
                            "BERTH_ALERT_FOR_S": "5", **env})


def test_settings_come_from_config(tmp_path):
    config = _config(tmp_path, BERTH_ALERT_P999_S="0.5", BERTH_ALERT_AT_MAX_FOR_S="10")
    settings = RuleSettings.from_config(config)
    assert (settings.for_s, settings.at_max_for_s, settings.p999_s) == (5, 10, 0.5)


def _check(tool: list[str], text: str, suffix: str):
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as handle:
        handle.write(text)
    try:
        done = subprocess.run(tool + [handle.name], capture_output=True, text=True, timeout=30)
    finally:
        Path(handle.name).unlink()
    assert done.returncode == 0, done.stdout + done.stderr


# promtool and amtool come with scripts/install-system-deps.sh (Debian prometheus packages).
def test_promtool_accepts_the_rules():
    _check(["promtool", "check", "rules"], to_yaml(build_rules([WEB, API], SHORT)), ".yml")


@pytest.mark.parametrize("env,receivers", [
    ({}, {"webhook": 1, "email": 0}),
    ({"BERTH_ALERT_WEBHOOKS": "http://127.0.0.1:9001/a, http://127.0.0.1:9002/b"},
     {"webhook": 3, "email": 0}),
    ({"BERTH_SMTP_HOST": "127.0.0.1", "BERTH_SMTP_TO": "ops@example.org",
      "BERTH_SMTP_USERNAME": "berth", "BERTH_SMTP_PASSWORD": "pw-123"},
     {"webhook": 1, "email": 1}),
])
def test_alertmanager_receivers(tmp_path, env, receivers):
    config = _config(tmp_path, BERTH_ALERT_GROUP_WAIT_S="1", BERTH_ALERT_GROUP_INTERVAL_S="2",
                     BERTH_ALERT_REPEAT_INTERVAL_S="60", **env)
    data = build_alertmanager(config)
    route = data["route"]
    assert route["group_by"] == ["alertname", "application", "service", "host"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == \
        ("1s", "2s", "1m")
    (receiver,) = data["receivers"]
    assert receiver["name"] == route["receiver"]
    hooks = receiver["webhook_configs"]
    assert len(hooks) == receivers["webhook"]
    assert len(receiver.get("email_configs", [])) == receivers["email"]
    assert all(h["send_resolved"] for h in hooks + receiver.get("email_configs", []))
    berth = hooks[0]
    assert berth["url"] == config.alert_webhook_url
    credentials = Path(berth["http_config"]["authorization"]["credentials_file"])
    assert credentials.read_text().strip() == config.alert_webhook_token
    assert config.alert_webhook_token not in render_alertmanager(config)
    _check(["amtool", "check-config"], render_alertmanager(config), ".yml")


def test_smtp_password_stays_out_of_repr_and_goes_to_a_private_file(tmp_path):
    config = _config(tmp_path, BERTH_SMTP_HOST="127.0.0.1", BERTH_SMTP_TO="ops@example.org",
                     BERTH_SMTP_PASSWORD="pw-123")
    assert "pw-123" not in repr(config)
    target = tmp_path / "monitoring" / "alertmanager.yml"
    write_private(target, render_alertmanager(config))
    assert target.stat().st_mode & 0o777 == 0o600
    assert "pw-123" in target.read_text()
