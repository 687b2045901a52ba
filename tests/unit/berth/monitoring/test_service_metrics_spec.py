"""A service's `metrics` endpoint: in the API's definitions and in Compose (x-berth), checked
(its port must be the service's), stored, and written back out by the Compose export."""
import pytest

from berth import db
from berth.errors import InvalidInput
from berth.workloads import compose, definitions
from berth.workloads.compose_export import to_compose

IMAGE = "127.0.0.1:5000/shop/web:1"


def test_a_definition_declares_metrics_and_gets_the_defaults():
    spec = definitions.parse_service({"name": "web", "image": IMAGE, "port": True,
                                      "metrics": {"path": "/stats"}})
    assert spec.metrics == {"port": 0, "path": "/stats", "histogram": "http_request_duration_seconds",
                            "status_label": "code"}


@pytest.mark.parametrize("metrics, message", [
    ({"port": 9100}, "is not one of the service's ports"),
    ({"port": True}, "is not one of the service's ports"),
    ({"path": "stats"}, "metrics.path"),
    ({"histogram": "bad name"}, "metrics.histogram"),
    ({"colour": "red"}, "unknown field"),
    ("yes", "must be an object"),
])
def test_bad_metrics_are_refused_clearly(metrics, message):
    with pytest.raises(InvalidInput, match=message):
        definitions.parse_service({"name": "web", "image": IMAGE, "port": True, "metrics": metrics})


def test_metrics_need_a_port():
    with pytest.raises(InvalidInput, match="metrics needs a port"):
        definitions.parse_service({"name": "web", "image": IMAGE, "metrics": {}})


COMPOSE = f"""
name: shop
services:
  web:
    image: {IMAGE}
    ports: ["8080"]
    x-berth:
      metrics: {{port: 8080, path: /metrics, histogram: req_seconds}}
"""


def test_compose_metrics_name_the_container_port_and_round_trip(database, config):
    definition = compose.parse(COMPOSE)
    [web] = definition["services"]
    assert web["metrics"]["port"] == 0
    application = definitions.create_application(definition, actor="t")
    db.session.commit()
    assert application.services[0].metrics == {"port": 0, "path": "/metrics",
                                               "histogram": "req_seconds", "status_label": "code"}
    again = compose.parse(to_compose(application))
    assert definitions.parse_service(again["services"][0]).metrics == application.services[0].metrics


def test_compose_refuses_a_port_the_service_does_not_have():
    with pytest.raises(InvalidInput, match=r"x-berth.metrics.port: 9100 is not one of the "
                                           r"service's ports \(8080\)"):
        compose.parse(COMPOSE.replace("port: 8080", "port: 9100"))


def test_the_api_answers_a_bad_port_with_a_400(client, admin):
    answer = client.post("/api/v1/applications", headers=admin, json={"name": "shop", "services": [
        {"name": "web", "image": IMAGE, "port": True, "metrics": {"port": 9100}}]})
    assert answer.status_code == 400
    assert "not one of the service's ports" in answer.json["error"]
