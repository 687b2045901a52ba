"""Compose files as Berth definitions: the subset mapped, units and durations, and every
field Berth cannot honour refused by its path, never dropped."""
import textwrap

import pytest

from berth.errors import InvalidInput
from berth.workloads import compose, definitions

IMAGE = "127.0.0.1:5000/shop/web:1"

THREE_SERVICES = textwrap.dedent(f"""\
    name: shop
    services:
      db:
        image: {IMAGE}
        command: ["sh", "-c", "exec httpd -f -p 127.0.0.1:$$PORT -h /www"]
        ports: ["80"]
        healthcheck:
          test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:${{PORT}}/"]
          interval: 500ms
          timeout: 1m30s
          retries: 2
          start_period: 2s
      api:
        image: {IMAGE}
        command: sh -c 'echo "hello world"'
        environment: [MODE=production, EMPTY=]
        depends_on:
          db: {{condition: service_healthy}}
        deploy:
          replicas: 3
          resources: {{limits: {{cpus: "0.5", memory: 256M, pids: 128}}}}
          placement: {{constraints: ["node.labels.disk==ssd", "node.labels.zone != b"]}}
          update_config: {{parallelism: 2, delay: 1m30s, order: start-first, monitor: 30s}}
      web:
        image: {IMAGE}
        environment: {{WORKERS: 4, DEBUG: false}}
        depends_on: [api]
        cap_add: [NET_BIND_SERVICE]
        read_only: true
        privileged: false
        x-berth: {{pool: core, idc: tucheng, min_memory: 1g}}
    x-common: &common
      anything: goes
    """)


def test_a_three_service_file_maps_onto_berth():
    definition = compose.parse(THREE_SERVICES)
    db, api, web = definition["services"]
    assert definition["name"] == "shop"
    assert db == {
        "name": "db", "image": IMAGE, "port": True,
        "command": ["sh", "-c", "exec httpd -f -p 127.0.0.1:$PORT -h /www"],
        "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:$PORT/"],
                        "interval_s": 0.5, "timeout_s": 90.0, "start_period_s": 2.0, "retries": 2}}
    assert api == {
        "name": "api", "image": IMAGE, "command": ["sh", "-c", 'echo "hello world"'],
        "environment": {"MODE": "production", "EMPTY": ""}, "depends_on": {"db": "healthy"},
        "replicas": 3, "cpus": 0.5, "memory": 256 * 2**20, "pids_limit": 128,
        "constraints": ["disk==ssd", "zone!=b"]}
    assert web == {
        "name": "web", "image": IMAGE, "environment": {"WORKERS": "4", "DEBUG": "false"},
        "depends_on": {"api": "started"}, "capabilities": ["NET_BIND_SERVICE"], "read_only": True,
        "pool": "core", "idc": "tucheng", "min_memory": 2**30}
    assert definition[compose.UPDATE_CONFIG] == {
        "api": {"parallelism": 2, "delay": 90.0, "order": "start-first", "monitor": 30.0}}


def test_the_definition_passes_berths_own_checks_and_starts_in_dependency_order():
    name, specs, levels = definitions.parse_application(compose.parse(THREE_SERVICES))
    assert name == "shop" and levels == [["db"], ["api"], ["web"]]
    assert [s.replicas for s in specs] == [1, 3, 1]


def test_the_update_config_is_what_releases_take():
    from berth.workloads.releases import from_update_config

    settings = from_update_config(compose.parse(THREE_SERVICES)[compose.UPDATE_CONFIG]["api"])
    assert settings == {"batch": 2, "auto_rollback": True, "max_surge": 2, "max_unavailable": 0,
                        "pause_s": 90.0, "deadline_s": 30.0}


def test_the_name_parameter_wins_and_a_name_is_needed():
    assert compose.parse(THREE_SERVICES, name="other")["name"] == "other"
    assert compose.parse(THREE_SERVICES, project="team")["project"] == "team"
    with pytest.raises(InvalidInput, match="name: give the application a name"):
        compose.parse(f"services: {{web: {{image: {IMAGE}}}}}")
    nameless = f"services: {{web: {{image: {IMAGE}}}}}\nx-berth: {{project: team}}\n"
    assert compose.parse(nameless, default_name="site") == {
        "name": "site", "project": "team", "services": [{"name": "web", "image": IMAGE}]}
    assert compose.parse(THREE_SERVICES, default_name="site")["name"] == "shop"


@pytest.mark.parametrize("text, seconds", [
    ("10s", 10), ("500ms", 0.5), ("1m30s", 90), ("1h", 3600), ("2h30m", 9000), ("1.5s", 1.5),
    ("250us", 0.00025),
])
def test_durations(text, seconds):
    assert compose.duration(text, "x") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "10 s", "1m30", "ten seconds", 10])
def test_bad_durations_are_refused(text):
    with pytest.raises(InvalidInput, match="duration"):
        compose.duration(text, "x")


@pytest.mark.parametrize("value, count", [
    ("256M", 256 * 2**20), ("1g", 2**30), ("512mb", 512 * 2**20), ("1024k", 2**20),
    ("1.5G", 3 * 2**29), ("100", 100), (67108864, 64 * 2**20), ("64MB", 64 * 2**20),
])
def test_memory_units(value, count):
    assert compose.byte_count(value, "x") == count


@pytest.mark.parametrize("value", ["lots", "1x", "-5M", True, 1.5])
def test_bad_sizes_are_refused(value):
    with pytest.raises(InvalidInput, match="size"):
        compose.byte_count(value, "x")


def service(fields: str) -> str:
    return f"name: shop\nservices:\n  web:\n    image: {IMAGE}\n" + textwrap.indent(
        textwrap.dedent(fields), "    ")


@pytest.mark.parametrize("fields, message", [
    ("privileged: true", "services.web.privileged: Berth cannot honour privileged"),
    ("volumes: [./data:/data]", "services.web.volumes: Berth cannot honour volumes"),
    ("cap_add: [SYS_ADMIN]", "services.web.cap_add: Berth cannot honour SYS_ADMIN"),
    ("network_mode: host", "services.web.network_mode: Berth cannot honour network_mode"),
    ("networks: [front]", "services.web.networks: Berth cannot honour networks"),
    ("build: .", "services.web.build: Berth cannot honour build"),
    ("secrets: [token]", "services.web.secrets: Berth cannot honour secrets"),
    ("configs: [nginx]", "services.web.configs: Berth cannot honour configs"),
    ("devices: [/dev/fuse]", "services.web.devices: Berth cannot honour devices"),
    ("pid: host", "services.web.pid: Berth cannot honour pid"),
    ("ipc: host", "services.web.ipc: Berth cannot honour ipc"),
    ("userns_mode: host", "services.web.userns_mode: Berth cannot honour userns_mode"),
    ("security_opt: [seccomp=unconfined]", "services.web.security_opt: Berth cannot honour"),
    ("user: root", "services.web.user: Berth cannot honour user"),
    ("entrypoint: [sh]", "services.web.entrypoint: Berth cannot honour entrypoint"),
    ("env_file: .env", "services.web.env_file: Berth cannot honour env_file"),
    ("container_name: web", "services.web.container_name: Berth cannot honour"),
    ("labels: {a: b}", "services.web.labels: Berth cannot honour labels"),
    ("sysctls: {net.core.somaxconn: 1024}", "services.web.sysctls: Berth cannot honour"),
    ("expose: ['80']", "services.web.expose: Berth cannot honour expose"),
    ("restart: 'no'", "services.web.restart: Berth cannot honour 'no'"),
    ("surprise: 1", "services.web.surprise: unknown Compose field"),
    ("x-berth: {surprise: 1}", "services.web.x-berth.surprise: unknown"),
    ("ports: ['8080:80']", "services.web.ports[0]: Berth cannot honour the fixed host port 8080"),
    ("ports: ['127.0.0.1:8080:80']", "fixed host port 127.0.0.1:8080"),
    ("ports: [{target: 80, published: 8080}]", "services.web.ports[0]: Berth cannot honour the fixed"),
    ("ports: ['80', '443']", "services.web.ports: Berth cannot honour more than one port"),
    ("ports: ['8000-8010']", "services.web.ports[0]: '8000-8010' is not a container port"),
    ("environment: [HOME]", "services.web.environment.HOME: Berth cannot take a value"),
    ("environment: {HOME: null}", "services.web.environment.HOME: Berth cannot take a value"),
    ("command: echo $HOME", "services.web.command: Berth cannot fill in ${HOME}"),
    ("depends_on: {db: {condition: service_completed_successfully}}",
     "services.web.depends_on.db.condition: Berth cannot honour 'service_completed_successfully'"),
    ("depends_on: {db: {condition: service_started, required: false}}",
     "services.web.depends_on.db.required: Berth cannot honour"),
    ("depends_on: {db: {condition: service_started, restart: true}}",
     "services.web.depends_on.db.restart: Berth cannot honour"),
    ("deploy: {mode: global}", "services.web.deploy.mode: Berth cannot honour 'global'"),
    ("deploy: {labels: {a: b}}", "services.web.deploy.labels: Berth cannot honour labels"),
    ("deploy: {resources: {reservations: {cpus: '1'}}}",
     "services.web.deploy.resources.reservations: Berth cannot honour reservations"),
    ("deploy: {resources: {limits: {devices: []}}}",
     "services.web.deploy.resources.limits.devices: Berth cannot honour"),
    ("deploy: {placement: {preferences: [{spread: node.labels.zone}]}}",
     "services.web.deploy.placement.preferences: Berth cannot honour"),
    ("deploy: {placement: {max_replicas_per_node: 1}}",
     "services.web.deploy.placement.max_replicas_per_node: Berth cannot honour"),
    ("deploy: {placement: {constraints: [node.role==manager]}}",
     "services.web.deploy.placement.constraints[0]: Berth cannot honour node.role"),
    ("deploy: {placement: {constraints: [node.hostname==a1]}}",
     "Berth cannot honour node.hostname"),
    ("deploy: {rollback_config: {parallelism: 1}}",
     "services.web.deploy.rollback_config: Berth cannot honour"),
    ("deploy: {restart_policy: {condition: on-failure}}",
     "services.web.deploy.restart_policy: Berth cannot honour"),
    ("deploy: {update_config: {failure_action: continue}}",
     "services.web.deploy.update_config: update_config.failure_action must be rollback or pause"),
    ("deploy: {update_config: {max_failure_ratio: 0.1}}",
     "services.web.deploy.update_config.max_failure_ratio: Berth cannot honour"),
    ("deploy: {update_config: {delay: 10}}",
     "services.web.deploy.update_config.delay: a duration"),
    ("healthcheck: {test: [CMD, true], start_interval: 1s}",
     "services.web.healthcheck.start_interval: Berth cannot honour"),
    ("healthcheck: {test: [WHAT, true]}", "services.web.healthcheck.test: a list starts with CMD"),
    ("healthcheck: {test: [CMD, true], interval: 1 minute}",
     "services.web.healthcheck.interval: '1 minute' is not a duration"),
    ("deploy: {resources: {limits: {memory: lots}}}",
     "services.web.deploy.resources.limits.memory: 'lots' is not a size"),
    ("cpus: 1\ndeploy: {resources: {limits: {cpus: '0.5'}}}",
     "services.web.deploy.resources.limits.cpus: disagrees"),
    ("deploy: {replicas: many}", "services.web.deploy.replicas: a whole number"),
])
def test_what_berth_cannot_honour_is_refused_naming_the_field(fields, message):
    with pytest.raises(InvalidInput) as refused:
        compose.parse(service(fields))
    assert message in refused.value.message


@pytest.mark.parametrize("text, message", [
    ("services: {web: {image: x:1}}\nvolumes: {data: {}}", "volumes: Berth cannot honour top-level volumes"),
    ("services: {web: {image: x:1}}\nnetworks: {front: {}}", "networks: Berth cannot honour"),
    ("services: {web: {image: x:1}}\nsecrets: {t: {file: ./t}}", "secrets: Berth cannot honour"),
    ("services: {web: {image: x:1}}\nsurprise: 1", "surprise: unknown top-level Compose field"),
    ("name: shop\nservices: {web: {command: [sh]}}", "services.web.image: required"),
    ("name: shop\nservices: {}", "services: a Compose file needs at least one service"),
    ("name: shop\nservices: [web]", "services: a Compose file needs at least one service"),
    ("- a list", "a Compose file is a mapping"),
    ("services: {web: [", "not valid YAML"),
    ("", "the Compose file is empty"),
])
def test_bad_documents_are_refused(text, message):
    with pytest.raises(InvalidInput) as refused:
        compose.parse(text)
    assert message in refused.value.message


def test_berths_own_checks_apply_and_name_the_service():
    with pytest.raises(InvalidInput, match="service web: image 'busybox' must be repository:tag"):
        compose.parse(service("").replace(IMAGE, "busybox"))
    with pytest.raises(InvalidInput, match="dependency cycle|cycle"):
        compose.parse(f"name: shop\nservices:\n  a: {{image: {IMAGE}, depends_on: [b]}}\n"
                      f"  b: {{image: {IMAGE}, depends_on: [a]}}\n")


def test_what_asks_for_nothing_is_accepted():
    definition = compose.parse(service("""\
        privileged: false
        volumes: []
        cap_drop: [ALL]
        restart: unless-stopped
        healthcheck: {disable: true}
        deploy: {mode: replicated, restart_policy: {condition: any}}
        x-note: for anchors
        """) + "version: '3.8'\nvolumes: {}\n")
    assert definition["services"] == [{"name": "web", "image": IMAGE}]


def test_healthcheck_forms():
    as_shell = compose.parse(service("healthcheck: {test: wget -q http://127.0.0.1:$$PORT/}"))
    assert as_shell["services"][0]["healthcheck"] == {
        "test": ["CMD-SHELL", "wget -q http://127.0.0.1:$PORT/"]}
    none = compose.parse(service("healthcheck: {test: [NONE]}"))
    assert "healthcheck" not in none["services"][0]


def test_an_alias_bomb_is_refused_not_walked():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    with pytest.raises(InvalidInput, match="over 20000 values"):
        compose.parse(bomb)
