"""Monitoring: Prometheus' service discovery (the targets to scrape), and the series the
pages draw (from Prometheus when it is configured, else Berth's own last samples)."""
from __future__ import annotations

from flask import jsonify
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import Forbidden

from berth import db
from berth.errors import NotFound
from berth.models import Host
from berth.monitoring import discovery, series
from berth.workloads import access
from web.api_v1 import ROW_ID, Blueprint
from web.api_v1.applications import viewed_service
from web.auth import require_api_user

blueprint = Blueprint("monitoring_api", __name__, url_prefix="/api/v1",
                      description="Monitoring: Prometheus targets and the pages' series")

MAX_WINDOW_S = 31 * 86400


class SeriesQuery(Schema):
    window = fields.Int(load_default=3600, validate=validate.Range(min=60, max=MAX_WINDOW_S),
                        metadata={"description": "seconds back from now"})
    step = fields.Int(load_default=None, allow_none=True,
                      validate=validate.Range(min=series.MIN_STEP_S, max=MAX_WINDOW_S),
                      metadata={"description": "seconds between points (default window/120, "
                                               "at least 10)"})


class TopQuery(Schema):
    by = fields.Str(load_default="qps", validate=validate.OneOf(series.TOP_BY))
    limit = fields.Int(load_default=10, validate=validate.Range(min=1, max=100))


class TargetSchema(Schema):
    targets = fields.List(fields.Str())
    labels = fields.Dict(keys=fields.Str(), values=fields.Str())


class SeriesSchema(Schema):
    labels = fields.Dict(keys=fields.Str(), values=fields.Str())
    points = fields.List(fields.List(fields.Float()))


class MarkerSchema(Schema):
    ts = fields.Float()
    kind = fields.Str()
    text = fields.Str()


class SeriesAnswer(Schema):
    source = fields.Str(metadata={"description": "prometheus, or berth (its own last samples)"})
    note = fields.Str(allow_none=True)
    window_s = fields.Int()
    step_s = fields.Int()
    series = fields.Dict(keys=fields.Str(), values=fields.List(fields.Nested(SeriesSchema)))
    markers = fields.List(fields.Nested(MarkerSchema))
    current = fields.Dict(keys=fields.Str(), values=fields.Float(allow_none=True))
    capacity = fields.Dict(keys=fields.Str(), values=fields.Float())


class TopEntry(Schema):
    application = fields.Str()
    service = fields.Str()
    value = fields.Float(allow_none=True)


class TopAnswer(Schema):
    source = fields.Str()
    by = fields.Str()
    services = fields.List(fields.Nested(TopEntry))


def _step(query: dict) -> int:
    return query["step"] or series.default_step(query["window"])


@blueprint.get("/monitoring/targets")
@blueprint.response(200, TargetSchema(many=True))
def targets():
    """Prometheus HTTP service discovery (http_sd_configs): the running, healthy instances
    of services that declare `metrics`, labelled application, service, revision, host,
    pool, cluster, idc and instance_name. For system administrators (Prometheus uses a
    system identity's API token, see `berth monitoring config`)."""
    if not require_api_user().is_admin:
        raise Forbidden("the monitoring targets are for system administrators")
    return jsonify(discovery.targets(discovery.rows(db.session)))


@blueprint.get("/applications/<name>/services/<service>/metrics")
@blueprint.arguments(SeriesQuery, location="query")
@blueprint.response(200, SeriesAnswer)
def service_metrics(query, name, service):
    """The service's QPS, average time, P999 and error ratio per revision (when it declares
    `metrics` and Prometheus answers), CPU and memory per instance, and its replicas."""
    _user, found = viewed_service(name, service)
    return series.service_series(found, query["window"], _step(query))


@blueprint.get(f"/hosts/<{ROW_ID}:host_id>/metrics")
@blueprint.arguments(SeriesQuery, location="query")
@blueprint.response(200, SeriesAnswer)
def host_metrics(query, host_id):
    """The cores and memory the host's containers use, and its capacity."""
    require_api_user()
    host = db.session.get(Host, host_id)
    if host is None:
        raise NotFound(f"no host with id {host_id}")
    return series.host_series(host, query["window"], _step(query))


@blueprint.get("/monitoring/top")
@blueprint.arguments(TopQuery, location="query")
@blueprint.response(200, TopAnswer)
def top(query):
    """The services the caller may see, highest first by QPS, P999, error ratio (from
    Prometheus) or CPU (Berth's own samples)."""
    user = require_api_user()
    ids = None
    if not user.is_admin:
        from sqlalchemy import select

        from berth.models import Application, Service

        visible = access.visible_applications(user).subquery()
        ids = list(db.session.scalars(select(Service.id).where(
            Service.application_id.in_(select(visible.c.id)))))
    return series.top_services(ids, query["by"], query["limit"])
