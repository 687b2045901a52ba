"""The audit log page: every event, filterable by kind, actor, subject and time."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from flask import Blueprint, render_template, request
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import ColumnElement, and_, false, or_
from wtforms import SelectChoice, SelectField, StringField

from berth import audit
from berth.models import Event, User
from berth.projects.services import visible_projects

blueprint = Blueprint("events", __name__, url_prefix="/events")

PAGE_SIZE = 50
FILTERS = ("kind", "actor", "subject", "since", "until")
KIND_PREFIXES = ["image.", "member.", "project.", "robot.", "user.", "host."]
DATE_FORMATS = "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (UTC), e.g. 2026-11-23 or 2026-11-23T12:00"


class FilterForm(FlaskForm):
    """Read from the query string: a GET that changes nothing needs no CSRF token."""

    class Meta:
        csrf = False

    kind = SelectField("Kind", validate_choice=False,  # any prefix in the URL works too
                       choices=[SelectChoice("", "all")] + [SelectChoice(p) for p in KIND_PREFIXES])
    actor = StringField("Actor")
    subject = StringField("Subject")
    since = StringField("Since")
    until = StringField("Until")


def parse_when(text: str, *, end_of_day: bool = False) -> datetime:
    """A date or a date and time, as naive UTC. A bare date as `until` means its whole day."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day)
            return start + timedelta(days=1) if end_of_day else start
        if len(text) < 16 or text[10] not in "T ":
            raise ValueError(text)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date: use {DATE_FORMATS}") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def visible_to(user: User) -> ColumnElement[bool] | None:
    """The restriction for non-admins: events about projects and repositories they can see."""
    if user.is_admin:
        return None
    names = [project.name for project in visible_projects(user)]
    if not names:
        return false()
    return or_(
        and_(Event.subject_type == "project", Event.subject.in_(names)),
        and_(Event.subject_type == "repository",
             or_(*(Event.subject.startswith(name + "/", autoescape=True) for name in names))),
    )


def events_for(user: User, *, kind=None, actor=None, subject=None, since=None, until=None,
               before_id=None, limit=PAGE_SIZE) -> list[Event]:
    """audit.query's filters (kind is a prefix), restricted to what `user` may see."""
    return audit.query(kind=kind, actor=actor, subject=subject, since=since, until=until,
                       before_id=before_id, limit=limit, where=visible_to(user))


@blueprint.get("/")
@login_required
def index():
    form = FilterForm(request.args)
    kind = (form.kind.data or "").strip()
    if kind and kind not in KIND_PREFIXES:
        form.kind.choices.append(SelectChoice(kind))
    filters = {name: request.args[name] for name in FILTERS if request.args.get(name)}
    errors: list[str] = []
    bounds = {}
    for field, end_of_day in ((form.since, False), (form.until, True)):
        if field.data and field.data.strip():
            try:
                bounds[field.name] = parse_when(field.data, end_of_day=end_of_day)
            except ValueError as error:
                field.errors = [str(error)]
                errors.append(f"{field.label.text}: {error}")
    before_id = request.args.get("before", "").strip()
    if before_id and not before_id.isdigit():
        errors.append(f"before: {before_id!r} is not an event id")
    if errors:
        return render_template("events/index.html", form=form, events=[], errors=errors,
                               older=None, newest=None), 400

    rows = events_for(current_user._get_current_object(),
                      kind=kind or None,
                      actor=(form.actor.data or "").strip() or None,
                      subject=(form.subject.data or "").strip() or None,
                      since=bounds.get("since"), until=bounds.get("until"),
                      before_id=int(before_id) if before_id else None, limit=PAGE_SIZE + 1)
    events, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    return render_template("events/index.html", form=form, events=events, errors=[],
                           older={**filters, "before": events[-1].id} if more else None,
                           newest=filters if before_id else None)
