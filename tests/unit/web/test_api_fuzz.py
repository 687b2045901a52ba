"""Property-based fuzzing of the whole /api/v1 OpenAPI document (schemathesis), in-process
over WSGI on a real migrated SQLite database, as a system admin, a project guest and
anonymously: no answer may be a 5xx, and every documented answer must match its schema."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from berth import accounts, celery_app, db
from berth.engine.fake import FakeEngine
from berth.projects import services as projects
from berth.workloads import definitions
from berth.workloads import releases as workload_releases
from berth.workloads import services as workload_services
from berth.workloads import tasks as workload_tasks
from tests.support import basic_auth

# Examples per operation and generation mode (negative ones where the operation has input
# that can be invalid): about 870 requests per role, ~8 s each here. More locally with
# BERTH_FUZZ_EXAMPLES=200. Derandomized, so a CI failure replays the same way.
EXAMPLES = int(os.environ.get("BERTH_FUZZ_EXAMPLES", "12"))
ROLES = {
    "system-admin": basic_auth("admin", "admin-password"),
    "project-guest": basic_auth("gus", "gus-password"),
    "anonymous": {},
}


@pytest.fixture
def config(config):
    # Wrong current passwords (POST /users/me/password) count as failed logins: at the
    # default limit the fuzzing would lock its own caller out after ten and test only 429s.
    return replace(config, login_failures_per_user="100000 per minute",
                   login_failures_per_address="100000 per minute")


@pytest.fixture
def fuzz_app(app, admin, monkeypatch):
    """Something to find for each role: a project `shop` with gus as its guest, an
    application `site` with a service `web`. Tasks are recorded, never run; engines are
    fakes, so an added host never sends traffic anywhere."""
    sent = []
    for module in (celery_app, workload_services, workload_releases, workload_tasks):
        monkeypatch.setattr(module, "enqueue", lambda task, *args, **kwargs: sent.append(task.name))
    engine = FakeEngine(cpus=4, memory=8 * 2**30)
    app.config["BERTH_ENGINE_CONNECT"] = lambda endpoint: engine
    with app.app_context(), db.unit_of_work():
        system = accounts.find_user("admin")
        gus = accounts.create_user("gus", "gus-password")
        db.session.flush()
        shop = projects.create_project("shop", public=False, actor=system)
        db.session.flush()
        projects.add_member(shop, gus.username, "guest", actor=system)
        definitions.create_application({"name": "site", "services": [
            {"name": "web", "image": "127.0.0.1:5000/shop/web:1"}]}, actor="admin")
    return app


def negatable(operation) -> bool:
    """Whether negative cases can exist: a body, a query, or a path parameter of a type
    other than string (a string path parameter has no invalid value that fits in a URL, and
    Hypothesis spends seconds per operation proving it)."""
    return bool(operation.body) or any(True for _ in operation.query) or any(
        parameter.definition.get("schema", {}).get("type") != "string"
        for parameter in operation.path_parameters)


# Random names mostly meet 404s: half the cases use the names of what fuzz_app made.
KNOWN = {"name": "shop", "username": "gus"}
KNOWN_UNDER_APPLICATIONS = {"name": "site", "service": "web", "number": 1}


def cases(operation, mode: GenerationMode):
    known = KNOWN_UNDER_APPLICATIONS if "/applications/" in operation.path else KNOWN
    fixed = {p.name: known[p.name] for p in operation.path_parameters if p.name in known}
    # A blocking query really waits (up to `wait` seconds): never here.
    query = {"wait": 0} if any(p.name == "wait" for p in operation.query) else None
    strategy = operation.as_strategy(generation_mode=mode, query=query)
    if not fixed:
        return strategy
    return strategy | operation.as_strategy(generation_mode=mode, path_parameters=fixed,
                                            query=query)


def fuzz(app, headers: dict[str, str]) -> tuple[Counter, Counter, list[str]]:
    """Every operation, positive and negative cases; returns requests and 5xx answers per
    operation, and the failure reports (each with a curl line to reproduce it)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    requests, server_errors, failures = Counter(), Counter(), []
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE][:2 if negatable(operation) else 1]
        for mode in modes:

            @given(case=cases(operation, mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def run(case):
                response = case.call(headers=headers)
                requests[operation.label] += 1
                if response.status_code >= 500:
                    server_errors[operation.label] += 1
                try:
                    case.validate_response(response, headers=headers, checks=[
                        not_a_server_error, response_schema_conformance])
                except FailureGroup as group:
                    failures.append(f"{operation.label} ({mode.value}): {group}")

            run()
    return requests, server_errors, failures


@pytest.mark.parametrize("role", list(ROLES))
def test_the_api_survives_fuzzing(fuzz_app, role):
    requests, server_errors, failures = fuzz(fuzz_app, ROLES[role])
    total = sum(requests.values())
    print(f"\n{role}: {total} requests over {len(requests)} operations, "
          f"{sum(server_errors.values())} server errors, {len(failures)} check failures")
    assert total > 0 and len(requests) >= 40
    assert not server_errors, f"5xx answers per operation: {dict(server_errors)}"
    assert not failures, "\n\n".join(failures[:20])
