"""Errors the rules raise; the HTTP edge turns each into a Mastodon-style {"error": ...} answer."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str, description: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.description = description


class BadRequest(ServiceError):
    status = 400


class Unauthorized(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404

    def __init__(self, message: str = "Record not found", description: str | None = None) -> None:
        super().__init__(message, description)


class Gone(ServiceError):
    status = 410


class Unprocessable(ServiceError):
    status = 422

    def __init__(self, message: str, description: str | None = None) -> None:
        if not message.startswith("Validation failed"):
            message = f"Validation failed: {message}"
        super().__init__(message, description)


class TooMany(ServiceError):
    """A rate limit was reached: `limit` requests per window, the window ending at `reset_at` (Unix time)."""
    status = 429

    def __init__(self, message: str, *, limit: int, reset_at: float) -> None:
        super().__init__(message)
        self.limit = limit
        self.reset_at = reset_at
