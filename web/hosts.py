"""Host inventory pages: the hosts table, clusters and pools, adding hosts, admin states.

Anyone logged in may look; only system administrators change the inventory. The helpers
at the top (engine_connect, require_admin, staleness, parse_labels) serve the API too.
"""
from __future__ import annotations

from datetime import timedelta

from flask import (Blueprint, current_app, flash, redirect, render_template, request,
                   url_for)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import (HiddenField, IntegerField, SelectChoice, SelectField, StringField,
                     TextAreaField)
from wtforms.validators import (AnyOf, DataRequired, InputRequired, Length, NumberRange,
                                Optional, Regexp, ValidationError)

from berth import db
from berth.clock import utcnow
from berth.errors import BerthError, Conflict, Forbidden, InvalidInput
from berth.hosts import overview, services
from berth.models.inventory import ADMIN_STATES
from web.api_v1 import ROW_ID
from web.pagination import page_of

blueprint = Blueprint("hosts", __name__, url_prefix="/hosts")

HOST_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
HOST_NAME_RULE = "letters, digits and _ . - (starting with a letter or digit)"
DISK_TYPES = ("ssd", "hdd", "nvme")
# Each admin action: its button, the confirmation question, and what it does.
ACTIONS = {
    "paused": ("Pause", "Pause {}?", "No new containers are placed on it; running ones stay."),
    "draining": ("Drain", "Drain {}?",
                 "Drain moves its containers elsewhere; nothing new is placed on it."),
    "maintenance": ("Maintenance", "Put {} in maintenance?",
                    "Nothing is placed on it while you work on the machine."),
    "active": ("Activate", "Activate {}?", "It accepts new containers again."),
}


def engine_connect() -> services.Connect:
    """How engines are reached when a host is added: tests (and tools) put their own in
    app.config["BERTH_ENGINE_CONNECT"], e.g. `lambda endpoint: FakeEngine()`."""
    return current_app.config.get("BERTH_ENGINE_CONNECT") or services.default_connect


def require_admin(user) -> None:
    if not user.is_admin:
        raise Forbidden("only system administrators may change the host inventory")


def staleness() -> timedelta:
    return overview.stale_after(current_app.config["BERTH"].probe_interval_s)


def parse_labels(text: str | None) -> dict[str, str]:
    """`key=value` per line, or comma-separated on a line; errors name the line."""
    labels: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        for item in filter(None, (part.strip() for part in line.split(","))):
            key, sep, value = (part.strip() for part in item.partition("="))
            if not sep or not key:
                raise InvalidInput(f"label line {number} {item!r} must be key=value")
            if key in labels:
                raise InvalidInput(f"label line {number}: {key!r} is given twice")
            try:
                labels.update(services.check_labels({key: value}))
            except InvalidInput as error:
                raise InvalidInput(f"label line {number}: {error.message}") from None
    return labels


def _user():
    return current_user._get_current_object()


# The hosts table

def _filters() -> dict[str, str]:
    """cluster, pool and state from the query string; unknown states are dropped."""
    found = {name: request.args.get(name, "").strip() for name in ("cluster", "pool", "state")}
    if found["state"] not in overview.STATUSES + ADMIN_STATES:
        found["state"] = ""
    return {name: value for name, value in found.items() if value}


HOSTS_PER_PAGE = 50


def _table_context(filters: dict[str, str]) -> dict:
    """One page of the filtered hosts; the htmx refresh asks for the same page again."""
    now, stale = utcnow(), staleness()
    page = page_of(overview.count_hosts(now, stale, **filters), HOSTS_PER_PAGE)
    rows = overview.host_rows(now, stale, **filters, limit=page.per_page, offset=page.offset)
    here = {**filters, **({"page": page.number} if page.number > 1 else {})}
    return dict(rows=rows, filters=filters, admin=_user().is_admin, actions=ACTIONS, page=page,
                page_url=lambda number: url_for("hosts.index", **filters, page=number),
                refresh_url=url_for("hosts.table", **here))


@blueprint.get("/")
@login_required
def index():
    filters = _filters()
    return render_template("hosts/index.html", clusters=overview.cluster_names(),
                           statuses=overview.STATUSES, admin_states=ADMIN_STATES,
                           **_table_context(filters))


@blueprint.get("/table")
@login_required
def table():
    """The table alone, for htmx to swap in every 10 s."""
    return render_template("hosts/_table.html", **_table_context(_filters()))


class StateForm(FlaskForm):
    state = HiddenField(validators=[AnyOf(ADMIN_STATES)])


@blueprint.post(f"/<{ROW_ID}:host_id>/state")
@login_required
def set_state(host_id: int):
    user = _user()
    require_admin(user)
    host = services.get_host(host_id)
    form = StateForm()
    if not form.validate_on_submit():
        flash(f"Choose an admin state: {', '.join(ADMIN_STATES)}.", "danger")
        return redirect(url_for("hosts.index"))
    services.set_admin_state(host, form.state.data, actor=user.username)
    flash(f"{host.name} is now {form.state.data}. {ACTIONS[form.state.data][2]}", "success")
    return redirect(url_for("hosts.index"))


# Adding a host

def _endpoint_rule(_form, field) -> None:
    try:
        services.validate_endpoint(field.data or "")
    except InvalidInput as error:
        raise ValidationError(error.message) from None


class HostForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=128), Regexp(
        HOST_NAME, message=f"a host name is {HOST_NAME_RULE}")])
    endpoint = StringField("Engine endpoint", validators=[DataRequired(), Length(max=255),
                                                          _endpoint_rule])
    cluster = StringField("Cluster", validators=[DataRequired(), Length(max=64)])
    pool = StringField("Pool", default="default", validators=[DataRequired(), Length(max=64)])
    idc = StringField("IDC", default="default", validators=[DataRequired(), Length(max=64)])
    labels = TextAreaField("Labels")
    port_range_start = IntegerField("Ports from", default=20000,
                                    validators=[InputRequired(), NumberRange(1024, 65535)])
    port_range_end = IntegerField("Ports to", default=29999,
                                  validators=[InputRequired(), NumberRange(1024, 65535)])
    disk_type = SelectField("Disk type", choices=[SelectChoice("", "none")]
                            + [SelectChoice(d) for d in DISK_TYPES])
    disk_gb = IntegerField("Disk GB", validators=[Optional(), NumberRange(min=1)])
    tls_ca = TextAreaField("CA certificate (PEM)")
    tls_cert = TextAreaField("Client certificate (PEM)")
    tls_key = TextAreaField("Client key (PEM)")

    def validate_port_range_end(self, field) -> None:
        if self.port_range_start.data is not None and field.data < self.port_range_start.data:
            raise ValidationError("must not be below the first port")


def _render_new(form: HostForm, status: int = 200):
    form.tls_key.data = None  # a secret is never sent back, not even to who typed it
    return render_template("hosts/new.html", form=form, clusters=overview.cluster_names(),
                           pools=overview.pool_names()), status


def _add(form: HostForm) -> bool:
    """Check what the engine cannot, then register; errors land on the field they concern."""
    try:
        labels = parse_labels(form.labels.data)
    except InvalidInput as error:
        form.labels.errors.append(error.message)
    try:
        tls = services.check_tls(form.tls_ca.data, form.tls_cert.data, form.tls_key.data)
    except InvalidInput as error:
        form.tls_cert.errors.append(error.message)
    if form.labels.errors or form.tls_cert.errors:
        return False
    try:
        services.add_host(
            form.name.data.strip(), form.endpoint.data.strip(), cluster=form.cluster.data.strip(),
            pool=form.pool.data.strip(), idc=form.idc.data.strip(), labels=labels, tls=tls,
            port_range=(form.port_range_start.data, form.port_range_end.data),
            disk_type=form.disk_type.data or None, disk_gb=form.disk_gb.data,
            actor=_user().username, connect=engine_connect())
        db.session.flush()
    except BerthError as error:
        db.session.rollback()
        # Form checks ran first, so what is left is a taken name or a silent engine.
        (form.name if isinstance(error, Conflict) else form.endpoint).errors.append(error.message)
        return False
    return True


@blueprint.route("/new", methods=["GET", "POST"])
@login_required
def new():
    require_admin(_user())
    form = HostForm()
    if not form.is_submitted():
        return _render_new(form)
    # Every refusal is a 400 with the form as typed (but the key), and nothing saved.
    if not form.validate() or not _add(form):
        return _render_new(form, 400)
    flash(f"Host {form.name.data.strip()} added: its engine answered.", "success")
    return redirect(url_for("hosts.index"))


# Clusters and pools

@blueprint.get("/clusters")
@login_required
def clusters():
    return render_template("hosts/clusters.html", tree=overview.cluster_tree(utcnow(), staleness()))


@blueprint.get(f"/<{ROW_ID}:host_id>")
@login_required
def show(host_id: int):
    """One host: its facts, what is placed on it, and CPU and memory in use against its
    capacity (Berth's last samples as text; charts from /api/v1/hosts/<id>/metrics)."""
    from flask import abort
    from sqlalchemy import select

    from berth.models import Application, ContainerInstance, Service

    row = overview.host_row(host_id, utcnow(), staleness())
    if row is None:
        abort(404)
    placed = db.session.execute(
        select(ContainerInstance.name, ContainerInstance.state, ContainerInstance.cpu_percent,
               ContainerInstance.memory_bytes, Service.name.label("service"), Service.cpus,
               Service.memory, Application.name.label("application"))
        .join(Service, Service.id == ContainerInstance.service_id)
        .join(Application, Application.id == Service.application_id)
        .where(ContainerInstance.host_id == host_id, ContainerInstance.state != "removed")
        .order_by(Application.name, Service.name, ContainerInstance.name)).all()
    running = [i for i in placed if i.state == "running"]
    used_cpus = sum((i.cpu_percent or 0.0) / 100.0 for i in running)
    used_memory = sum(i.memory_bytes or 0 for i in running)
    sampled = any(i.cpu_percent is not None for i in running)
    return render_template("hosts/show.html", row=row, placed=placed, used_cpus=used_cpus,
                           used_memory=used_memory, sampled=sampled)


# Template helpers, for this blueprint's templates only

@blueprint.context_processor
def _helpers():
    return dict(cores=cores, gib=gib, ago=ago, percent=percent)


def cores(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def gib(value: int | None) -> str:
    return "?" if value is None else f"{value / 2**30:.1f}"


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def percent(part: float, whole: float | None) -> int:
    return 0 if not whole else min(100, round(100 * part / whole))
