"""Errors that service functions raise and the edges (web, CLI) turn into 4xx answers."""


class BerthError(Exception):
    """Base: `status` is the HTTP status the web layer answers with."""

    status = 400

    def __init__(self, message: str, detail: object | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidInput(BerthError):
    status = 400


class NotFound(BerthError):
    status = 404


class Forbidden(BerthError):
    status = 403


class Conflict(BerthError):
    status = 409
