"""An application as a Compose file, for editing it in the web UI: berth.workloads.compose
reads the text back into the same definition (what the page's round-trip test checks)."""
from __future__ import annotations

import yaml

from berth.models import Application, Service
from berth.workloads import definitions

_SWARM_LABEL_OPERATORS = ("==", "!=")  # what node.labels.<key><op><value> can say
_MiB = 2**20


def to_compose(application: Application) -> str:
    graph = definitions.dependency_graph(application)
    document: dict = {"name": application.name, "x-berth": {"project": application.project.name},
                      "services": {s.name: _service(s, dict(graph.get(s.name, [])))
                                   for s in application.services}}
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)


def _service(service: Service, depends_on: dict[str, str]) -> dict:
    out: dict = {"image": service.image}
    if service.command:
        out["command"] = [_literal(a) for a in service.command]
    if service.environment:
        out["environment"] = {k: _literal(v) for k, v in service.environment.items()}
    if service.ports:
        out["ports"] = ["80"]  # the container's port is Berth's to pick: it gets $PORT
    if service.healthcheck:
        out["healthcheck"] = _healthcheck(service.healthcheck)
    if depends_on:
        out["depends_on"] = {name: {"condition": f"service_{condition}"}
                             for name, condition in depends_on.items()}
    if service.capabilities:
        out["cap_add"] = list(service.capabilities)
    if service.read_only:
        out["read_only"] = True
    labels, others = _constraints(service.constraints or [])
    deploy: dict = {"replicas": service.replicas, "resources": {"limits": {
        "cpus": f"{service.cpus:g}", "memory": _bytes(service.memory),
        "pids": service.pids_limit}}}
    if labels:
        deploy["placement"] = {"constraints": labels}
    out["deploy"] = deploy
    berth = {name: getattr(service, name) for name in ("cluster", "pool", "idc", "min_cpus")
             if getattr(service, name) is not None}
    if service.min_memory is not None:
        berth["min_memory"] = _bytes(service.min_memory)
    if service.strategy != "spread":
        berth["strategy"] = service.strategy
    if service.error_pattern != "ERROR|WARN":
        berth["error_pattern"] = service.error_pattern
    if others:
        berth["constraints"] = others
    if service.metrics:
        # Port 0 is its $PORT: the container port written in `ports` above.
        berth["metrics"] = {**service.metrics, "port": 80}
    if berth:
        out["x-berth"] = berth
    return out


def _healthcheck(check: dict) -> dict:
    out: dict = {"test": [_literal(a) for a in check["test"]]}
    for key in ("interval", "timeout", "start_period"):
        if check.get(f"{key}_s") is not None:
            out[key] = f"{check[f'{key}_s'] * 1000:g}ms"
    if check.get("retries") is not None:
        out["retries"] = check["retries"]
    return out


def _constraints(constraints: list[str]) -> tuple[list[str], list[str]]:
    """Label equalities in Swarm's words (node.labels.disk==ssd); the rest stay Berth's."""
    labels, others = [], []
    for text in constraints:
        for operator in _SWARM_LABEL_OPERATORS:
            key, found, value = text.partition(operator)
            if found and key.strip() and value.strip() and " " not in key.strip():
                labels.append(f"node.labels.{key.strip()}{operator}{value.strip()}")
                break
        else:
            others.append(text)
    return labels, others


def _bytes(count: int) -> str:
    return f"{count // _MiB}M" if count % _MiB == 0 else str(count)


def _literal(text: str) -> str:
    """Compose interpolates $NAME; Berth's own $PORT must reach the container as written."""
    return str(text).replace("$", "$$")
