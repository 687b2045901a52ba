"""Registries: one Debian `docker-registry` (distribution 2.8) per name under R/reg-NAME/."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .common import LOCALHOST, deep_merge
from .ports import http_status
from .processes import Proc, child_env, start_process, wait_until


@dataclasses.dataclass
class Registry:
    name: str
    dir: Path
    port: int
    extra_config: dict = dataclasses.field(default_factory=dict)
    proc: Proc | None = None

    config_path = property(lambda self: self.dir / "config.yml")
    data_dir = property(lambda self: self.dir / "data")
    log_path = property(lambda self: self.dir / "registry.log")
    host = property(lambda self: f"{LOCALHOST}:{self.port}")
    url = property(lambda self: f"http://{LOCALHOST}:{self.port}")

    def config(self) -> dict:
        base = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text",
                    "fields": {"service": f"registry-{self.name}"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {
                "addr": self.host,
                # Fixed per registry so upload state survives restart_registry().
                "secret": f"berth-testbed-{self.name}-{self.port}",
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "health": {"storagedriver": {"enabled": False}},
        }
        return deep_merge(base, self.extra_config)

    def write_config(self) -> None:
        # JSON is valid YAML, so no YAML library is needed.
        self.config_path.write_text(json.dumps(self.config(), indent=2) + "\n")

    def to_state(self) -> dict:
        return {
            "name": self.name,
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "pid": self.proc.pid if self.proc else None,
            "pid_start": self.proc.start_time if self.proc else None,
            "config_path": str(self.config_path),
            "data_dir": str(self.data_dir),
            "dir": str(self.dir),
            "log": str(self.log_path),
            "extra_config": self.extra_config,
        }

    @classmethod
    def from_state(cls, entry: dict) -> "Registry":
        return cls(name=entry["name"], dir=Path(entry["dir"]), port=entry["port"],
                   extra_config=entry.get("extra_config") or {},
                   proc=Proc.adopt(entry.get("pid"), entry.get("pid_start")))


def spawn_registry(registry: Registry, program: str) -> None:
    registry.data_dir.mkdir(parents=True, exist_ok=True)
    registry.write_config()
    # REGISTRY_* variables would override the config file.
    start_process(registry, [program, "serve", str(registry.config_path)], registry.log_path,
                  env=child_env(drop_prefixes=("REGISTRY_",)), cwd=registry.dir)


def registry_answers(registry: Registry) -> bool:
    # 401 counts: the registry is up, it just wants a token.
    return http_status(registry.port, "/v2/") in (200, 401)


def wait_registry(registry: Registry, deadline: float) -> None:
    wait_until(f"registry {registry.name}", lambda: registry_answers(registry), deadline,
               registry.proc, registry.log_path)
