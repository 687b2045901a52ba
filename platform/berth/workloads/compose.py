"""A Docker Compose document as a Berth application definition (the dict that
`POST /api/v1/applications` takes). Pure: text in, dict out. What Compose can say and Berth
cannot honour is refused with the field's path, never dropped."""
from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

import yaml

from berth.errors import InvalidInput
from berth.workloads import definitions

# The produced definition's extra top-level key: each service's deploy.update_config,
# as Compose wrote it (durations in seconds), for the releases that applying it starts
# (berth.workloads.releases.from_update_config reads it). Definitions ignore it.
UPDATE_CONFIG = "update_config"

MAX_TEXT = 512 * 1024
MAX_NODES = 20_000
# Fields of a Compose service that Berth reads.
_SERVICE_FIELDS = {
    "image", "command", "environment", "healthcheck", "depends_on", "deploy", "ports",
    "cap_add", "cap_drop", "read_only", "pids_limit", "cpus", "mem_limit", "restart",
    "x-berth",
}
# Berth's own fields that Compose has no word for, under `x-berth:` in a service.
_BERTH_EXTENSIONS = {"cluster", "pool", "idc", "strategy", "min_cpus", "min_memory",
                     "error_pattern", "constraints", "metrics"}
# Compose service fields Berth knows of and cannot honour, with why (the rest: "unknown").
_REFUSED_WHY = {
    "build": "Berth runs images from a registry; build and push the image, then name it in image",
    "volumes": "containers get no volumes (they may be placed on any host)",
    "volumes_from": "containers get no volumes (they may be placed on any host)",
    "tmpfs": "containers get no extra mounts",
    "privileged": "containers run with every capability dropped but an allowlist",
    "network_mode": "a service with ports runs on its host's network, others on none",
    "networks": "a service with ports runs on its host's network, others on none",
    "links": "services find each other through discovery, not links",
    "external_links": "services find each other through discovery, not links",
    "extra_hosts": "containers' /etc/hosts is the engine's",
    "dns": "containers use the engine's DNS settings",
    "dns_search": "containers use the engine's DNS settings",
    "dns_opt": "containers use the engine's DNS settings",
    "expose": "only published ports mean something to Berth (see ports)",
    "secrets": "Berth has no secrets store for containers",
    "configs": "Berth has no config store for containers",
    "devices": "containers get no host devices",
    "device_cgroup_rules": "containers get no host devices",
    "gpus": "containers get no host devices",
    "pid": "containers do not share a PID namespace",
    "ipc": "containers do not share an IPC namespace",
    "uts": "containers do not share a UTS namespace",
    "userns_mode": "the engine's user namespace setting applies",
    "cgroup": "the engine's cgroup setting applies",
    "cgroup_parent": "the engine's cgroup setting applies",
    "security_opt": "containers run with no-new-privileges and the engine's profiles",
    "sysctls": "containers get the engine's sysctls",
    "ulimits": "containers get the engine's ulimits (and pids_limit)",
    "user": "the image's user applies",
    "working_dir": "the image's working directory applies",
    "entrypoint": "the image's entrypoint applies (set command)",
    "env_file": "files on this machine cannot reach the hosts; write environment",
    "container_name": "Berth names containers <application>_<service>_<revision>_<slot>",
    "hostname": "the engine sets the hostname",
    "domainname": "the engine sets the hostname",
    "mac_address": "the engine assigns addresses",
    "labels": "Berth sets its own container labels",
    "logging": "the engine's logging driver applies",
    "init": "the image's init applies",
    "stop_signal": "containers are stopped with the engine's default signal",
    "stop_grace_period": "containers are stopped with the engine's default grace period",
    "profiles": "every service of the file is deployed",
    "extends": "write the service out whole",
    "platform": "the hosts' platform applies",
    "pull_policy": "hosts pull the image when they lack it",
    "isolation": "the engine's isolation applies",
    "shm_size": "containers get the engine's default /dev/shm",
    "oom_kill_disable": "memory limits are enforced",
    "oom_score_adj": "the engine's OOM settings apply",
    "mem_reservation": "memory is reserved and limited at the same figure (memory)",
    "memswap_limit": "swap follows the engine's settings",
    "mem_swappiness": "swap follows the engine's settings",
    "cpu_shares": "CPU is limited by cpus",
    "cpu_quota": "CPU is limited by cpus",
    "cpu_period": "CPU is limited by cpus",
    "cpuset": "CPU is limited by cpus",
    "cpu_count": "CPU is limited by cpus",
    "cpu_percent": "CPU is limited by cpus",
    "blkio_config": "block I/O follows the engine's settings",
    "stdin_open": "containers run detached",
    "tty": "containers run detached",
    "attach": "containers run detached",
    "annotations": "Berth sets its own container metadata",
    "storage_opt": "the engine's storage settings apply",
    "scale": "write deploy.replicas",
    "develop": "Berth runs images, not source trees",
    "post_start": "Berth runs no lifecycle hooks",
    "pre_stop": "Berth runs no lifecycle hooks",
}
_TOP_LEVEL = {"name", "services", "version", "x-berth"}
_TOP_LEVEL_REFUSED = {"volumes", "networks", "secrets", "configs", "include"}
_DEPLOY_FIELDS = {"replicas", "resources", "placement", "update_config", "mode", "restart_policy"}
_HEALTHCHECK_FIELDS = {"test", "interval", "timeout", "retries", "start_period", "disable"}
# A Compose duration (Go's form): 1h30m, 10s, 500ms, 1.5s.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
# A Compose byte figure: 256M, 1g, 512mb, 1024k, 100 (bytes). Binary units, as Docker's.
_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_VARIABLE = re.compile(r"\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
_SWARM_LABEL = re.compile(r"^\s*node\.labels\.([A-Za-z0-9][A-Za-z0-9_./-]*)\s*(==|!=)\s*(.+?)\s*$")
_SWARM_ANY = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=)")
_CONDITIONS = {"service_started": "started", "service_healthy": "healthy"}


def parse(text: str, *, name: str | None = None, project: str | None = None,
          default_name: str | None = None) -> dict:
    """The Berth definition of the Compose document `text`; `name` (else its top-level
    `name:`, else `default_name`) names the application, as `docker compose -p` would.
    InvalidInput names the first field Berth cannot take."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("the Compose file is empty")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"the Compose file is over {MAX_TEXT // 1024} KiB")
    try:
        document = yaml.safe_load(text)
        _count_nodes(document)
        return from_document(document, name=name, project=project, default_name=default_name)
    except yaml.YAMLError as error:
        raise InvalidInput(f"the Compose file is not valid YAML: {error}") from error
    except RecursionError as error:
        raise InvalidInput("the Compose file nests too deeply") from error


def _count_nodes(document: object) -> None:
    """YAML aliases make a small file a huge tree ("billion laughs"); walking it would not end."""
    stack, seen = [document], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise InvalidInput(f"the Compose file has over {MAX_NODES} values (aliases included)")
        if isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def from_document(document: object, *, name: str | None = None, project: str | None = None,
                  default_name: str | None = None) -> dict:
    """As parse, from the document already loaded (a dict)."""
    if not isinstance(document, Mapping):
        raise InvalidInput("a Compose file is a mapping with services: at its top")
    for key, value in document.items():
        key = str(key)
        if key in _TOP_LEVEL or key.startswith("x-"):
            continue
        if key in _TOP_LEVEL_REFUSED:
            if value:
                raise InvalidInput(f"{key}: Berth cannot honour top-level {key}"
                                   + (" (containers get no volumes)" if key == "volumes" else ""))
            continue
        raise InvalidInput(f"{key}: unknown top-level Compose field (Berth reads name, services)")
    services = document.get("services")
    if not isinstance(services, Mapping) or not services:
        raise InvalidInput("services: a Compose file needs at least one service")
    extension = _mapping(document.get("x-berth") or {}, "x-berth")
    unknown = sorted(set(extension) - {"project"})
    if unknown:
        raise InvalidInput(f"x-berth.{unknown[0]}: unknown (top-level x-berth takes project)")
    application = name if name is not None else document.get("name", default_name)
    if application is None:
        raise InvalidInput("name: give the application a name (top-level name:, or the name "
                           "parameter)")
    out: dict = {"name": application, "services": []}
    project = project if project is not None else extension.get("project")
    if project is not None:
        out["project"] = project
    update_configs = {}
    for service_name, raw in services.items():
        service, update_config = _service(str(service_name), raw)
        out["services"].append(service)
        if update_config is not None:
            update_configs[service["name"]] = update_config
    if update_configs:
        out[UPDATE_CONFIG] = update_configs
    definitions.parse_application(out)  # Berth's own checks too, before anything is stored
    return out


def _service(name: str, raw: object) -> tuple[dict, dict | None]:
    where = f"services.{name}"
    raw = _interpolate(_mapping(raw if raw is not None else {}, where), where)
    for key in raw:
        if key in _SERVICE_FIELDS or (key.startswith("x-") and key != "x-berth"):
            continue  # other x- fields are Compose's extensions: for anchors, not for Berth
        if key in _REFUSED_WHY:
            if raw[key] in (False, None, [], {}, ""):
                continue  # asks for nothing: nothing is dropped
            raise InvalidInput(f"{where}.{key}: Berth cannot honour {key} ({_REFUSED_WHY[key]})")
        raise InvalidInput(f"{where}.{key}: unknown Compose field; Berth reads "
                           f"{', '.join(sorted(_SERVICE_FIELDS))}")
    if "image" not in raw:
        raise InvalidInput(f"{where}.image: required (Berth runs images from a registry)")
    service: dict = {"name": name, "image": raw["image"]}
    if "command" in raw and raw["command"] is not None:
        service["command"] = _command(raw["command"], f"{where}.command")
    if "environment" in raw and raw["environment"] is not None:
        service["environment"] = _environment(raw["environment"], f"{where}.environment")
    if raw.get("healthcheck") is not None:
        healthcheck = _healthcheck(raw["healthcheck"], f"{where}.healthcheck")
        if healthcheck is not None:
            service["healthcheck"] = healthcheck
    if raw.get("depends_on") is not None:
        service["depends_on"] = _depends_on(raw["depends_on"], f"{where}.depends_on")
    if raw.get("ports") is not None:
        if _ports(raw["ports"], f"{where}.ports"):
            service["port"] = True
    if raw.get("cap_add") is not None:
        service["capabilities"] = _strings(raw["cap_add"], f"{where}.cap_add")
        refused = [c for c in service["capabilities"]
                   if c.upper().removeprefix("CAP_") not in definitions.CAPABILITIES]
        if refused:
            raise InvalidInput(f"{where}.cap_add: Berth cannot honour {', '.join(refused)} "
                               f"(containers may add back only "
                               f"{', '.join(definitions.CAPABILITIES)})")
    if raw.get("cap_drop") is not None:
        # Every capability is dropped already: any cap_drop is honoured.
        _strings(raw["cap_drop"], f"{where}.cap_drop")
    if "read_only" in raw:
        service["read_only"] = _bool(raw["read_only"], f"{where}.read_only")
    if "pids_limit" in raw:
        service["pids_limit"] = _whole(raw["pids_limit"], f"{where}.pids_limit")
    if "cpus" in raw:
        service["cpus"] = _cpus(raw["cpus"], f"{where}.cpus")
    if "mem_limit" in raw:
        service["memory"] = _bytes(raw["mem_limit"], f"{where}.mem_limit")
    if "restart" in raw and raw["restart"] not in ("always", "unless-stopped"):
        raise InvalidInput(f"{where}.restart: Berth cannot honour {raw['restart']!r}: it "
                           f"restarts every container that stops (always, unless-stopped)")
    update_config = _deploy(raw.get("deploy"), f"{where}.deploy", service)
    for key, value in _mapping(raw.get("x-berth") or {}, f"{where}.x-berth").items():
        if key not in _BERTH_EXTENSIONS:
            raise InvalidInput(f"{where}.x-berth.{key}: unknown; x-berth takes "
                               f"{', '.join(sorted(_BERTH_EXTENSIONS))}")
        if key == "constraints":
            service["constraints"] = service.get("constraints", []) + _strings(
                value, f"{where}.x-berth.constraints")
        elif key == "min_memory":
            service[key] = _bytes(value, f"{where}.x-berth.min_memory")
        elif key == "metrics":
            service[key] = _metrics(value, raw.get("ports"), f"{where}.x-berth.metrics")
        else:
            service[key] = value
    return service, update_config


def _metrics(raw: object, ports: object, where: str) -> dict:
    """x-berth.metrics: its port is the service's container port as `ports` wrote it (or
    0 / "$PORT"); Berth's definition calls that port 0, its $PORT."""
    metrics = dict(_mapping(raw, where))
    declared = None
    if isinstance(ports, list) and len(ports) == 1:
        port = ports[0]
        port = port.get("target") if isinstance(port, Mapping) else str(port).partition("/")[0]
        declared = str(port)
    if "port" in metrics and metrics["port"] not in (0, "$PORT"):
        if declared is None or str(metrics["port"]) != declared:
            raise InvalidInput(f"{where}.port: {metrics['port']!r} is not one of the service's "
                               f"ports ({declared or 'it has none'})")
        metrics["port"] = 0
    return metrics


def _deploy(raw: object, where: str, service: dict) -> dict | None:
    if raw is None:
        return None
    raw = _mapping(raw, where)
    _only(raw, _DEPLOY_FIELDS, where, "Berth reads replicas, resources.limits, "
          "placement.constraints, update_config")
    if raw.get("mode", "replicated") != "replicated":
        raise InvalidInput(f"{where}.mode: Berth cannot honour {raw['mode']!r} (only replicated: "
                           f"set deploy.replicas)")
    if "replicas" in raw:
        service["replicas"] = _whole(raw["replicas"], f"{where}.replicas")
    policy = raw.get("restart_policy")
    if policy is not None:
        policy = _mapping(policy, f"{where}.restart_policy")
        if set(policy) - {"condition"} or policy.get("condition", "any") != "any":
            raise InvalidInput(f"{where}.restart_policy: Berth cannot honour it: it restarts "
                               f"every container that stops, backing off (condition: any)")
    resources = raw.get("resources")
    if resources is not None:
        resources = _mapping(resources, f"{where}.resources")
        _only(resources, {"limits"}, f"{where}.resources",
              "Berth reserves what it limits: write resources.limits")
        limits = _mapping(resources.get("limits") or {}, f"{where}.resources.limits")
        _only(limits, {"cpus", "memory", "pids"}, f"{where}.resources.limits",
              "Berth limits cpus, memory, pids")
        for key, field, convert in (("cpus", "cpus", _cpus), ("memory", "memory", _bytes),
                                    ("pids", "pids_limit", _whole)):
            if key in limits:
                value = convert(limits[key], f"{where}.resources.limits.{key}")
                if field in service and service[field] != value:
                    raise InvalidInput(f"{where}.resources.limits.{key}: disagrees with the "
                                       f"service's own {field} setting; write one")
                service[field] = value
    placement = raw.get("placement")
    if placement is not None:
        placement = _mapping(placement, f"{where}.placement")
        _only(placement, {"constraints"}, f"{where}.placement",
              "Berth reads placement.constraints")
        service["constraints"] = [
            _constraint(c, f"{where}.placement.constraints[{i}]")
            for i, c in enumerate(_strings(placement.get("constraints") or [],
                                           f"{where}.placement.constraints"))]
    if raw.get("update_config") is None:
        return None
    return _update_config(raw["update_config"], f"{where}.update_config")


def _update_config(raw: object, where: str) -> dict:
    from berth.workloads.releases import from_update_config
    from scheduler.orchestration.rollout import ReleaseError

    out = dict(_mapping(raw, where))
    for key in ("delay", "monitor"):
        if key in out:
            out[key] = duration(out[key], f"{where}.{key}")
    if "max_failure_ratio" in out:
        raise InvalidInput(f"{where}.max_failure_ratio: Berth cannot honour it (a batch fails "
                           f"on any container that keeps failing; see max_failures)")
    try:
        from_update_config(out)  # checked now, so a bad one is refused before anything starts
    except ReleaseError as error:
        raise InvalidInput(f"{where}: {error}") from error
    return out


def _constraint(text: str, where: str) -> str:
    """Swarm's `node.labels.disk==ssd` as Berth's `disk==ssd` (a host label)."""
    match = _SWARM_LABEL.match(text)
    if match:
        return f"{match.group(1)}{match.group(2)}{match.group(3)}"
    other = _SWARM_ANY.match(text)
    if other:
        raise InvalidInput(f"{where}: Berth cannot honour {other.group(1)} in {text!r}: it "
                           f"places by host labels (node.labels.<key>==<value>)")
    raise InvalidInput(f"{where}: {text!r} is not a Swarm constraint like node.labels.disk==ssd")


def _healthcheck(raw: object, where: str) -> dict | None:
    raw = _mapping(raw, where)
    _only(raw, _HEALTHCHECK_FIELDS, where, "Berth reads test, interval, timeout, retries, "
          "start_period, disable")
    if raw.get("disable") is True:
        return None
    test = raw.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    elif isinstance(test, list) and test and all(isinstance(a, (str, int, float)) for a in test):
        test = [str(a) for a in test]
        if test == ["NONE"]:
            return None
        if test[0] not in ("CMD", "CMD-SHELL"):
            raise InvalidInput(f"{where}.test: a list starts with CMD or CMD-SHELL (or is [NONE])")
    else:
        raise InvalidInput(f"{where}.test: a command string or a list like [CMD, wget, -q, ...]")
    out: dict = {"test": test}
    for key in ("interval", "timeout", "start_period"):
        if key in raw:
            out[f"{key}_s"] = duration(raw[key], f"{where}.{key}")
    if "retries" in raw:
        out["retries"] = _whole(raw["retries"], f"{where}.retries")
    return out


def _depends_on(raw: object, where: str) -> dict[str, str]:
    if isinstance(raw, list):
        return {name: "started" for name in _strings(raw, where)}
    out = {}
    for name, entry in _mapping(raw, where).items():
        entry = _mapping(entry if entry is not None else {}, f"{where}.{name}")
        _only(entry, {"condition", "required", "restart"}, f"{where}.{name}",
              "Berth reads condition")
        condition = entry.get("condition", "service_started")
        if condition not in _CONDITIONS:
            raise InvalidInput(f"{where}.{name}.condition: Berth cannot honour {condition!r} "
                               f"(it runs services, not one-shot jobs): use service_started "
                               f"or service_healthy")
        if entry.get("required", True) is not True:
            raise InvalidInput(f"{where}.{name}.required: Berth cannot honour an optional "
                               f"dependency")
        if entry.get("restart", False) is not False:
            raise InvalidInput(f"{where}.{name}.restart: Berth cannot honour it (dependents are "
                               f"not restarted when a dependency changes)")
        out[str(name)] = _CONDITIONS[condition]
    return out


def _ports(raw: object, where: str) -> bool:
    """Whether the service has a port: one container port, the host port Berth's to pick."""
    if not isinstance(raw, list):
        raise InvalidInput(f"{where}: a list of ports")
    if len(raw) > 1:
        raise InvalidInput(f"{where}: Berth cannot honour more than one port per service "
                           f"(it allocates one host port, passed as $PORT)")
    for index, port in enumerate(raw):
        at = f"{where}[{index}]"
        if isinstance(port, Mapping):
            _only(port, {"target", "protocol", "mode", "name", "app_protocol", "published"},
                  at, "Berth reads target")
            if port.get("published") not in (None, ""):
                raise _fixed_port(at, port["published"])
            if port.get("mode", "ingress") not in ("ingress", "host"):
                raise InvalidInput(f"{at}.mode: must be ingress or host")
            continue
        text = str(port)
        if "/" in text:
            text, _, protocol = text.partition("/")
            if protocol not in ("tcp", "udp"):
                raise InvalidInput(f"{at}: protocol must be tcp or udp")
        if ":" in text:
            raise _fixed_port(at, text.rsplit(":", 1)[0])
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise InvalidInput(f"{at}: {port!r} is not a container port (Berth cannot "
                               f"honour ranges)")
    return bool(raw)


def _fixed_port(where: str, published) -> InvalidInput:
    return InvalidInput(
        f"{where}: Berth cannot honour the fixed host port {published}: it picks a free port "
        f"from each host's range and passes it as $PORT (the service runs on the host's "
        f"network and must listen on $PORT); write only the container port, e.g. \"80\"")


def _command(raw: object, where: str) -> list[str]:
    if isinstance(raw, str):
        try:
            return shlex.split(raw)
        except ValueError as error:
            raise InvalidInput(f"{where}: {error}") from error
    if isinstance(raw, list) and all(isinstance(a, (str, int, float)) and not isinstance(a, bool)
                                     for a in raw):
        return [str(a) for a in raw]
    raise InvalidInput(f"{where}: a string or a list of strings")


def _environment(raw: object, where: str) -> dict[str, str]:
    pairs = []
    if isinstance(raw, list):
        for item in raw:
            if not isinstance(item, str):
                raise InvalidInput(f"{where}: each entry is NAME=value")
            key, equals, value = item.partition("=")
            pairs.append((key, value if equals else None))
    elif isinstance(raw, Mapping):
        pairs = list(raw.items())
    else:
        raise InvalidInput(f"{where}: a list of NAME=value or a mapping")
    out = {}
    for key, value in pairs:
        if value is None:
            raise InvalidInput(f"{where}.{key}: Berth cannot take a value from this machine's "
                               f"environment; write the value")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif not isinstance(value, (str, int, float)):
            raise InvalidInput(f"{where}.{key}: a string, number or boolean")
        out[str(key)] = str(value)
    return out


def _interpolate(value, where: str):
    """Compose's variables: `$$` is a literal `$`; `$PORT` stays for Berth to fill in; any
    other variable is refused, as the file is read on the server, far from any shell."""
    if isinstance(value, str):
        def replace(match: re.Match) -> str:
            token = match.group(1)
            if token == "$":
                return "$"
            variable = token[1:-1] if token.startswith("{") else token
            if variable == "PORT":
                return "$PORT"
            raise InvalidInput(f"{where}: Berth cannot fill in ${{{variable}}} (the file is read "
                               f"on the server): write the value, or $$ for a literal $ "
                               f"($PORT is the port Berth allocates)")
        return _VARIABLE.sub(replace, value)
    if isinstance(value, Mapping):
        return {str(k): _interpolate(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def duration(raw: object, where: str) -> float:
    """Seconds of a Compose duration: 10s, 500ms, 1m30s, 1h."""
    text = raw.strip() if isinstance(raw, str) else None
    if not text:
        raise InvalidInput(f"{where}: a duration like 10s, 500ms or 1m30s")
    total, position = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(text):
        raise InvalidInput(f"{where}: {raw!r} is not a duration like 10s, 500ms or 1m30s")
    return total


def byte_count(raw: object, where: str) -> int:
    """Bytes of a Compose size: 256M, 1g, 512mb, 1024k, or a whole number of bytes."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    match = _BYTES.match(raw.strip()) if isinstance(raw, str) else None
    if not match:
        raise InvalidInput(f"{where}: {raw!r} is not a size like 256M, 1g or 512mb")
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])


_bytes = byte_count


def _cpus(raw: object, where: str) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None:
        raise InvalidInput(f"{where}: a number of CPUs like 0.5")
    return value


def _whole(raw: object, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidInput(f"{where}: a whole number")
    return raw


def _bool(raw: object, where: str) -> bool:
    if not isinstance(raw, bool):
        raise InvalidInput(f"{where}: true or false")
    return raw


def _strings(raw: object, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
        raise InvalidInput(f"{where}: a list of strings")
    return list(raw)


def _mapping(raw: object, where: str) -> Mapping:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: a mapping")
    return raw


def _only(raw: Mapping, allowed: set[str], where: str, hint: str) -> None:
    for key in raw:
        if key not in allowed:
            raise InvalidInput(f"{where}.{key}: Berth cannot honour {key} ({hint})")
