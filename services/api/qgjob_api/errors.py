"""The API's exceptions. Each HttpError maps to one JSON error response."""

from __future__ import annotations


class ApiError(Exception):
    """Base of every error the API raises on purpose."""


class ConfigError(ApiError):
    """The environment holds an invalid setting; the process cannot start."""


class HttpError(ApiError):
    """An error shown to the client as `{"error": code, "message": message}`."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}

    def headers(self) -> dict[str, str]:
        """Headers the answer carries besides the body."""
        return {}


class InvalidJson(HttpError):
    status = 400
    code = "invalid_json"


class ValidationFailed(HttpError):
    """One field of the input is wrong; `field` is its path, e.g. `jobs[3].priority`."""

    status = 400
    code = "validation_error"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field

    def body(self) -> dict[str, str]:
        return {**super().body(), "field": self.field}


class NotFound(HttpError):
    status = 404
    code = "not_found"


class Unavailable(HttpError):
    """Redis or RabbitMQ cannot be reached; the request had no lasting effect."""

    status = 503
    code = "unavailable"
    # Seconds a client is asked to wait before a retry (Retry-After): a restart of Redis or
    # RabbitMQ takes a few.
    retry_after_s = 2

    @classmethod
    def retry_after(cls) -> dict[str, str]:
        return {"Retry-After": str(cls.retry_after_s)}

    def headers(self) -> dict[str, str]:
        return self.retry_after()


class Unauthorized(HttpError):
    """No token, or one that is unknown, revoked or expired (QGJOB_AUTH=tokens)."""

    status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="qgjob"'}


class Forbidden(HttpError):
    """A valid token whose role or org does not allow this."""

    status = 403
    code = "forbidden"


class HeaderTooLarge(HttpError):
    """Too many header fields, or one too long (qgjob_api.guards)."""

    status = 431
    code = "header_too_large"
