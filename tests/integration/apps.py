"""Helpers for integration tests of applications on the test bed's engines: service specs
that answer HTTP on 127.0.0.1, what Berth says of an application, what the engines run."""
from __future__ import annotations

import docker
import requests

from berth.engine import LABEL_APPLICATION, LABEL_SERVICE
from tests.support import wait_for


def http_service(name, image, replicas, depends_on=None, **fields):
    """busybox httpd on the port Berth allocates ($PORT), host network, 127.0.0.1 only."""
    return {
        "name": name, "image": image, "replicas": replicas, "port": True, "cpus": 0.1,
        "memory": 32 * 2**20, "depends_on": depends_on or {},
        "command": ["sh", "-c", "mkdir -p /www && echo " + name + " > /www/index.html"
                    " && exec httpd -f -p 127.0.0.1:$PORT -h /www"],
        "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:$PORT/"],
                        "interval_s": 0.5, "retries": 2},
        **fields,
    }


def app_state(berth_app, name):
    response = berth_app.api("GET", f"/api/v1/applications/{name}")
    assert response.status_code == 200, response.text
    return {s["name"]: s for s in response.json()["services"]}


def all_healthy(berth_app, name, expect):
    services = app_state(berth_app, name)
    return all(services[s]["status"] == "healthy" and
               sum(i["state"] == "running" for i in services[s]["instances"]) == n
               for s, n in expect.items()) and services


def containers(bed, app, service=None, status="running"):
    """(engine name, container) of `app` on every engine that answers. A stopped engine holds
    nothing that runs and a container removed while its engine lists is gone; anything else
    (an engine too slow to answer, say) fails the caller instead of hiding its containers."""
    found = []
    labels = [f"{LABEL_APPLICATION}={app}"] + ([f"{LABEL_SERVICE}={service}"] if service else [])
    for engine in bed.state["engines"]:
        try:
            client = bed.docker_client(engine["name"])
        except Exception:  # a stopped engine holds nothing that runs
            continue
        try:
            for summary in client.api.containers(all=True, filters={"label": labels}):
                if status is None or summary["State"] == status:
                    try:
                        found.append((engine["name"], client.containers.get(summary["Id"])))
                    except docker.errors.NotFound:
                        pass  # removed since the list
        except requests.exceptions.ConnectionError:
            pass  # the engine stopped since the client was made
        finally:
            client.close()
    return found


def states(bed, app) -> list[str]:
    """The docker states of `app`'s containers on every engine that answers: one list call
    per engine (the SDK's containers.list inspects each container, far too slow to poll)."""
    found = []
    for engine in bed.state["engines"]:
        try:
            client = bed.docker_client(engine["name"])
        except Exception:
            continue
        try:
            found += [c["State"] for c in client.api.containers(
                all=True, filters={"label": [f"{LABEL_APPLICATION}={app}"]})]
        except Exception:
            pass
        finally:
            client.close()
    return found


def port_of(container) -> str:
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    return env["PORT"]


def tear_down(berth_app, name):
    response = berth_app.api("DELETE", f"/api/v1/applications/{name}")
    assert response.status_code == 202 and response.json()["deleting_since"]
    wait_for(lambda: berth_app.api("GET", f"/api/v1/applications/{name}").status_code == 404,
             120, f"application {name} to be torn down")
