"""The operator's commands (`berth login`, `apply`, `status`, `scale`): a client of a Berth
server's API over HTTP with a personal API token, from any machine, as the docker CLI is of
an engine. Exit codes: 0 done, 1 the server refused (its error is printed), 2 bad usage,
3 no server or no credentials."""
from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import click
import requests

TIMEOUT_S = 60.0
REFUSED, UNREACHABLE = 1, 3


class ClientError(click.ClickException):
    def __init__(self, message: str, exit_code: int = REFUSED):
        super().__init__(message)
        self.exit_code = exit_code


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "berth" / "credentials.json"


@dataclass(frozen=True)
class Server:
    """Where the API is and who calls it: a token is the password of HTTP Basic with its
    owner's username."""

    url: str
    username: str
    token: str

    @classmethod
    def from_environment(cls) -> Server:
        """BERTH_URL, BERTH_TOKEN (and BERTH_USER, or BERTH_TOKEN as user:token) override
        what `berth login` stored."""
        stored = {}
        path = credentials_path()
        if path.exists():
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                raise ClientError(f"cannot read {path}: {error}; run berth login again",
                                  UNREACHABLE) from error
        url = os.environ.get("BERTH_URL") or stored.get("url")
        token = os.environ.get("BERTH_TOKEN") or stored.get("token")
        username = os.environ.get("BERTH_USER")
        if token and ":" in token and not username:
            username, token = token.split(":", 1)
        username = username or stored.get("username")
        if not url:
            raise ClientError("no Berth server: run `berth login URL`, or set BERTH_URL and "
                              "BERTH_TOKEN", UNREACHABLE)
        if not token or not username:
            raise ClientError("no API token: run `berth login URL`, or set BERTH_TOKEN (with "
                              "BERTH_USER, or as username:token)", UNREACHABLE)
        return cls(url.rstrip("/"), username, token)

    def call(self, method: str, path: str, **kwargs) -> dict | list:
        return call(method, self.url + path, auth=(self.username, self.token), **kwargs)


def call(method: str, url: str, **kwargs) -> dict | list:
    """The answer's JSON; a 4xx or 5xx is a ClientError with the server's error and detail."""
    try:
        response = requests.request(method, url, timeout=TIMEOUT_S, **kwargs)
    except requests.RequestException as error:
        raise ClientError(f"cannot reach {url}: {error}", UNREACHABLE) from error
    if response.status_code >= 400:
        raise ClientError(_error_of(response))
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError as error:
        raise ClientError(f"{url} answered {response.status_code} with no JSON: is it a Berth "
                          f"server?", UNREACHABLE) from error


def _error_of(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        message = f"{response.status_code}: {body['error']}"
        if body.get("detail") not in (None, "", {}, []):
            message += f"\n{json.dumps(body['detail'], indent=2)}"
        return message
    return f"{response.status_code} {response.reason} from {response.url}"


# -- commands ---------------------------------------------------------------------------------


@click.command("login")
@click.argument("url")
@click.option("--username", help="asked for if not given")
@click.option("--token-name", default=None, help="default: berth-cli@<this machine>")
@click.option("--lifetime-days", type=int, default=None,
              help="at most the server's token lifetime (and by default)")
def login(url: str, username: str | None, token_name: str | None, lifetime_days: int | None):
    """Log in to the Berth server at URL: make a personal API token with your password and
    store URL and token (0600) under ~/.config/berth/. The password is not stored."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise click.UsageError("URL starts with http:// or https://")
    username = username or click.prompt("Username", default=getpass.getuser())
    password = click.prompt("Password", hide_input=True)
    body = {"name": token_name or f"berth-cli@{socket.gethostname()}"[:64]}
    if lifetime_days is not None:
        body["lifetime_days"] = lifetime_days
    token = call("POST", url + "/api/v1/tokens", json=body, auth=(username, password))
    path = credentials_path()
    _revoke_replaced(path, url, username, token["token"])
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "username": username, "token": token["token"],
                   "token_id": token["id"]}, handle)
    os.chmod(path, 0o600)  # also when it existed before with other modes
    expiry = token.get("expires_at") or "never"
    click.echo(f"logged in to {url} as {username}; token {token['name']} (expires {expiry}) "
               f"stored in {path}")


def _revoke_replaced(path: Path, url: str, username: str, new_token: str) -> None:
    """The token an earlier login stored for the same server and user is revoked: logging
    in again leaves one live token per machine, not one per login."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if (old.get("url"), old.get("username")) != (url, username) or not old.get("token_id"):
        return
    try:
        call("DELETE", f"{url}/api/v1/tokens/{int(old['token_id'])}", auth=(username, new_token))
    except (ClientError, ValueError, TypeError) as error:
        click.echo(f"could not revoke the token stored before: {error}", err=True)


@click.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.File("r"),
              help="the Compose file (- for standard input)")
@click.option("--dry-run", is_flag=True, help="change nothing: show what would change and "
                                              "where each new container would be placed")
@click.option("--name", help="the application's name, for a file without a top-level name")
@click.option("--project", help="the project a new application goes in")
@click.option("--json", "as_json", is_flag=True, help="print the server's answer as JSON")
def apply(path, dry_run: bool, name: str | None, project: str | None, as_json: bool):
    """Make the application what the Compose file says: create it, or scale and release
    the services that changed. Applying the same file again changes nothing."""
    text = path.read()
    name = name or _name_in(text)
    server = Server.from_environment()
    params = {"dry_run": "true"} if dry_run else {}
    if project:
        params["project"] = project
    answer = server.call("PUT", f"/api/v1/applications/{quote(name, safe='')}",
                         data=text.encode(), params=params,
                         headers={"Content-Type": "application/yaml"})
    click.echo(json.dumps(answer, indent=2) if as_json else describe_apply(answer))


def _name_in(text: str) -> str:
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ClientError(f"the file is not valid YAML: {error}", 2) from error
    name = document.get("name") if isinstance(document, dict) else None
    if not isinstance(name, str) or not name:
        raise click.UsageError("the file has no top-level name: give --name")
    return name


def describe_apply(answer: dict) -> str:
    """The answer of an apply, for people."""
    verb = "would " if answer["dry_run"] else ""
    lines = []
    if answer["created"]:
        order = ", then ".join(" and ".join(level) for level in answer.get("levels") or [])
        lines.append(f"{answer['application']}: {verb}{'create' if verb else 'created'} "
                     f"(services start in this order: {order})")
    elif not answer["changed"]:
        lines.append(f"{answer['application']}: unchanged")
    else:
        lines.append(f"{answer['application']}: {verb}change {len(answer['changed'])} "
                     f"service(s)" if verb else f"{answer['application']}: changed "
                     f"{len(answer['changed'])} service(s)")
    for change in answer["changed"]:
        parts = []
        replicas = change.get("replicas")
        if replicas and not answer["created"]:
            parts.append(f"replicas {replicas['from']} -> {replicas['to']}")
        elif replicas:
            parts.append(f"{replicas['to']} replica(s)")
        if change.get("changes"):
            parts.append("release of " + ", ".join(sorted(change["changes"]))
                         + (f" (release {change['release']})" if change.get("release") else ""))
        lines.append(f"  {change['service']}: {'; '.join(parts)}")
        for details in (change.get("changes") or {}).items():
            lines.append(f"      {details[0]}: {_short(details[1]['from'])} -> "
                         f"{_short(details[1]['to'])}")
        for placement in change.get("placements") or []:
            where = placement["host"] or "nowhere"
            lines.append(f"      new container -> {where}: {placement['explanation']}")
        if change.get("note") and change["note"] != "new service":
            lines.append(f"      ({change['note']})")
    if answer.get("unchanged") and answer["changed"]:
        lines.append(f"  unchanged: {', '.join(answer['unchanged'])}")
    lines += [f"  note: {note}" for note in answer.get("notes") or []]
    return "\n".join(lines)


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


@click.command("status")
@click.argument("application", required=False)
@click.option("--json", "as_json", is_flag=True, help="print the server's answer as JSON")
def status(application: str | None, as_json: bool):
    """The applications you can see, or one application's services and instances."""
    server = Server.from_environment()
    if application is None:
        answer = server.call("GET", "/api/v1/applications")
        if as_json:
            click.echo(json.dumps(answer, indent=2))
            return
        rows = [("APPLICATION", "SERVICES", "STATUS")]
        for app in answer:
            statuses = sorted({s["status"] for s in app["services"]})
            rows.append((app["name"], str(len(app["services"])),
                         "tearing down" if app.get("deleting_since") else ", ".join(statuses)))
        click.echo(_table(rows) if answer else "no applications")
        return
    answer = server.call("GET", f"/api/v1/applications/{quote(application, safe='')}")
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    rows = [("SERVICE", "STATUS", "RUNNING", "REVISION", "IMAGE", "ENDPOINTS")]
    for service in answer["services"]:
        running = sum(i["state"] == "running" for i in service.get("instances") or [])
        rows.append((service["name"], service["status"], f"{running}/{service['replicas']}",
                     str(service.get("revision", "")), service["image"],
                     ",".join(service.get("endpoints") or []) or "-"))
    lines = [_table(rows)]
    for service in answer["services"]:
        if service.get("status_detail"):
            lines.append(f"{service['name']}: {service['status_detail']}")
    if answer.get("deleting_since"):
        lines.append(f"tearing down since {answer['deleting_since']}")
    click.echo("\n".join(lines))


@click.command("scale")
@click.argument("application")
@click.argument("service")
@click.argument("replicas", type=click.IntRange(min=0))
def scale(application: str, service: str, replicas: int):
    """Set SERVICE of APPLICATION to REPLICAS containers."""
    server = Server.from_environment()
    answer = server.call("PATCH", f"/api/v1/applications/{quote(application, safe='')}/services/"
                         f"{quote(service, safe='')}",
                         json={"replicas": replicas})
    click.echo(f"{application}/{service}: {answer['replicas']} replica(s) wanted "
               f"(status {answer['status']})")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in rows)


COMMANDS = (login, apply, status, scale)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(click.Group(commands={c.name: c for c in COMMANDS})())
