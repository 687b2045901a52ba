"""One JSON error shape for the API, {"error": ..., "detail": ...}, and HTML error pages."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from berth.errors import BerthError


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/service/")) or (
        request.accept_mimetypes.best == "application/json"
    )


def error_response(status: int, message: str, detail: object | None = None, headers=None):
    response = jsonify({"error": message, "detail": detail})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def api_error_response(error: HTTPException):
    detail = None
    data = getattr(error, "data", None) or {}
    if "messages" in data:  # webargs validation errors, by location and field
        detail = data["messages"]
        messages = data["messages"]
        fields = [f"{field}: {'; '.join(map(str, errs))}" if isinstance(errs, list) else field
                  for location in messages.values() for field, errs in location.items()]
        message = "invalid input: " + ", ".join(fields)
    else:
        message = error.description or error.name
    # WWW-Authenticate on a 401 and Retry-After on a 429 tell the client what to do next.
    headers = dict(error.get_response().headers) if error.code in (401, 429) else {}
    headers.pop("Content-Type", None)
    headers.pop("Content-Length", None)
    return error_response(error.code or 500, message, detail, headers)


def init_app(app: Flask) -> None:
    @app.errorhandler(BerthError)
    def _berth_error(error: BerthError):
        if wants_json():
            return error_response(error.status, error.message, error.detail)
        return render_template("error.html", status=error.status, message=error.message), error.status

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if wants_json():
            return api_error_response(error)
        return render_template("error.html", status=error.code,
                               message=error.description), error.code
