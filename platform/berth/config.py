"""Configuration from the environment, with embedded defaults that need no server.

One `Config` is shared by the web app, the Celery worker and beat, and the CLI, so every
process agrees on the instance folder, the database and the broker.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from berth import vault


def _instance_dir(env: dict[str, str]) -> Path:
    return Path(env.get("BERTH_INSTANCE", "instance")).resolve()


def private_folder(path: Path) -> Path:
    """The instance folder holds the database (engine TLS keys among it) and the secrets:
    readable by Berth's user only, whatever the umask, also when it already existed."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.geteuid():
        os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it is missing (SQLite then keeps the mode, and
    gives its -wal and -shm files the same), and make an existing one 0600."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_uid == os.geteuid():
        os.chmod(path, 0o600)


def _persistent_secret(path: Path) -> str:
    """A random secret created on first start and kept, so sessions survive restarts."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _read_secret_file(path: str | None) -> str | None:
    """A secret passed as a file (0600) instead of in every process's environment."""
    return (Path(path).read_text().strip() or None) if path else None


@dataclass(frozen=True)
class Config:
    instance_dir: Path
    database_url: str
    broker_url: str
    result_backend: str
    secret_key: str = field(repr=False)
    admin_password: str | None = field(default=None, repr=False)
    # Fernet keys for secrets at rest (berth.vault), kept out of the database; first encrypts.
    secrets_keys: tuple[str, ...] = field(default=(), repr=False)
    # The primary registry (its auth.token points at Berth), and what it calls us.
    registry_url: str = "http://127.0.0.1:5000"
    registry_service: str = "berth-registry"
    token_issuer: str = "berth"
    token_lifetime_s: int = 300
    notification_secret: str = field(default="", repr=False)
    # Liveness: how often beat probes hosts and how many failures make a host down.
    probe_interval_s: float = 10.0
    probe_timeout_s: float = 3.0
    probe_failures_for_down: int = 2
    reconcile_interval_s: float = 15.0
    # Mirrors: how often beat probes registries and compares each mirror with the primary
    # (a no-change comparison of 100 tags takes well under a second).
    mirror_reconcile_interval_s: float = 60.0
    # A pass's lease on its applications, renewed every quarter of it while the pass runs:
    # a pass killed with -9 holds them at most this long. The pass stops acting (and stops
    # renewing) once it has run reconcile_pass_limit_s.
    reconcile_lease_s: float = 60.0
    reconcile_pass_limit_s: float = 300.0
    # How long a service waits for its dependencies before it is marked failed.
    dependency_timeout_s: float = 300.0
    # CPU sampling: a reading is the mean since the previous sample, so a load is seen
    # 0.55-1.55 periods after it starts (at a 50% target); 5 s keeps the autoscaler's worst
    # reaction under 10 s (benchmarks/autoscale.py: 7.2 s at 5 s, 14.4 s at 10 s).
    metrics_interval_s: float = 5.0
    # Discovery's blocking queries each hold a web thread while they wait; at most this many
    # per web process, so watchers can never take every thread from the UI and the API.
    max_blocking_queries: int = 2
    # Failed logins (form, API Basic auth, registry token endpoint) allowed per username and
    # per client address in a moving window, in `limits` notation ("10 per 5 minutes");
    # beyond either, every attempt is answered 429 (a correct password too) until the oldest
    # failure leaves the window. Successful logins never count. The address limit is looser:
    # several people may share one address (a NAT, an office proxy).
    login_failures_per_user: str = "10 per 5 minutes"
    login_failures_per_address: str = "30 per 5 minutes"
    # Personal API tokens expire this long after creation; 0: never.
    api_token_lifetime_days: int = 90
    # Session cookies only over HTTPS; set it when a proxy terminates TLS in front of Berth
    # (a direct HTTPS request gets Secure cookies anyway).
    secure_cookies: bool = False
    # Proxies in front of Berth whose X-Forwarded-For/-Proto are trusted (0: none, the
    # default, as anyone can send these headers). Behind one load balancer, 1: the failed-
    # login limits then count the client's address, not the balancer's.
    proxy_hops: int = 0
    # Prometheus (berth.monitoring): where Berth's pages query it (empty: not configured,
    # pages show Berth's own last samples), how often it scrapes and evaluates rules, and
    # Berth's URL as Prometheus reaches it (its /metrics and the targets endpoint).
    prometheus_url: str = ""
    prometheus_scrape_interval_s: float = 15.0
    prometheus_evaluation_interval_s: float = 15.0
    prometheus_berth_url: str = "http://127.0.0.1:8000"
    # Alerts (berth.monitoring.rules and .alertmanager): how long a condition must hold
    # before it fires, the default per-service thresholds, and Alertmanager's grouping.
    alert_for_s: float = 120.0
    alert_at_max_for_s: float = 300.0
    alert_latency_for_s: float = 300.0
    alert_p999_s: float = 1.0
    alert_error_ratio: float = 0.05
    alert_group_wait_s: float = 30.0
    alert_group_interval_s: float = 300.0
    alert_repeat_interval_s: float = 4 * 3600.0
    # Where Alertmanager posts to Berth (POST /api/v1/alerts/webhook), with a bearer token
    # Alertmanager reads from alert_webhook_token_file; and the operator's own webhooks.
    alert_webhook_url: str = "http://127.0.0.1:8000/api/v1/alerts/webhook"
    alert_webhook_token: str = field(default="", repr=False)
    alert_webhooks: tuple[str, ...] = ()
    alertmanager_url: str | None = None
    # Where `berth monitoring config` wrote prometheus.yml and rules.yml: threshold changes
    # re-render rules.yml there (berth.monitoring.tasks.render_rules). None: nowhere.
    monitoring_dir: Path | None = None
    # E-mail receiver, when smtp_host is set; the password only ever goes to Alertmanager's
    # 0600 configuration file.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_to: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_require_tls: bool = True
    testing: bool = False

    @property
    def alert_webhook_token_file(self) -> Path:
        return self.instance_dir / "alert_webhook_token"

    @property
    def installation_id(self) -> str:
        """Names this installation on the containers it creates, so that two Berths sharing
        an engine never sweep each other's. Derived from the secret key, not revealing it."""
        return hashlib.sha256(b"berth-installation:" + self.secret_key.encode()).hexdigest()[:16]

    @property
    def rate_limit_storage_uri(self) -> str:
        """Where failed-login counts live (Flask-Limiter storage). Shared through Redis when
        the broker is Redis, so every web process and machine sees the same counts; otherwise
        in each web process's memory, so with N gunicorn workers a client may fail up to N
        times the limit before all of them refuse it, and a restart forgets the counts."""
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return "memory://"

    @property
    def registry_host(self) -> str:
        """host:port as image references name it (`127.0.0.1:5000/project/app:tag`)."""
        return urlsplit(self.registry_url).netloc

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Config":
        env = dict(os.environ if env is None else env)
        instance = private_folder(_instance_dir(env))
        for url_name, file in (("BROKER_URL", "broker.sqlite"), ("RESULT_BACKEND", "results.sqlite")):
            if not env.get(url_name):  # the embedded defaults: SQLite files in the instance
                private_file(instance / file)
        values = dict(
            instance_dir=instance,
            database_url=env.get("DATABASE_URL", f"sqlite:///{instance / 'berth.sqlite'}"),
            # kombu's SQLAlchemy transport: a broker that needs no server.
            broker_url=env.get("BROKER_URL", f"sqla+sqlite:///{instance / 'broker.sqlite'}"),
            result_backend=env.get(
                "RESULT_BACKEND", f"db+sqlite:///{instance / 'results.sqlite'}"
            ),
            secret_key=env.get("SECRET_KEY") or _persistent_secret(instance / "secret_key"),
            admin_password=env.get("BERTH_ADMIN_PASSWORD") or _read_secret_file(
                env.get("BERTH_ADMIN_PASSWORD_FILE")),
            secrets_keys=vault.load_keys(env, instance),
            registry_url=env.get("BERTH_REGISTRY_URL", "http://127.0.0.1:5000").rstrip("/"),
            notification_secret=env.get("BERTH_NOTIFICATION_SECRET")
            or _persistent_secret(instance / "notification_secret"),
            alert_webhook_token=_persistent_secret(instance / "alert_webhook_token"),
            alert_webhooks=tuple(url.strip() for url in env.get("BERTH_ALERT_WEBHOOKS", "")
                                 .split(",") if url.strip()),
            smtp_password=env.get("BERTH_SMTP_PASSWORD") or _read_secret_file(
                env.get("BERTH_SMTP_PASSWORD_FILE")),
        )
        for name, cast in (
            ("token_lifetime_s", int),
            ("probe_interval_s", float),
            ("probe_timeout_s", float),
            ("probe_failures_for_down", int),
            ("reconcile_interval_s", float),
            ("mirror_reconcile_interval_s", float),
            ("reconcile_lease_s", float),
            ("reconcile_pass_limit_s", float),
            ("dependency_timeout_s", float),
            ("metrics_interval_s", float),
            ("max_blocking_queries", int),
            ("login_failures_per_user", str),
            ("login_failures_per_address", str),
            ("api_token_lifetime_days", int),
            ("secure_cookies", lambda raw: raw.strip().lower() in ("1", "true", "yes", "on")),
            ("proxy_hops", int),
            ("prometheus_url", lambda raw: raw.strip().rstrip("/")),
            ("prometheus_scrape_interval_s", float),
            ("prometheus_evaluation_interval_s", float),
            ("prometheus_berth_url", lambda raw: raw.strip().rstrip("/")),
            ("alert_for_s", float),
            ("alert_at_max_for_s", float),
            ("alert_latency_for_s", float),
            ("alert_p999_s", float),
            ("alert_error_ratio", float),
            ("alert_group_wait_s", float),
            ("alert_group_interval_s", float),
            ("alert_repeat_interval_s", float),
            ("alert_webhook_url", str),
            ("alertmanager_url", lambda raw: raw.rstrip("/")),
            ("monitoring_dir", lambda raw: Path(raw).resolve()),
        ):
            raw = env.get("BERTH_" + name.upper())
            if raw:
                values[name] = cast(raw)
        for name, cast in (("host", str), ("port", int), ("from", str), ("to", str),
                           ("username", str), ("require_tls", lambda raw: raw.strip().lower()
                                               in ("1", "true", "yes", "on"))):
            raw = env.get("BERTH_SMTP_" + name.upper())
            if raw:
                values["smtp_" + name] = cast(raw)
        values.update(overrides)
        return cls(**values)
