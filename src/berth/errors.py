"""Errors every layer raises; the API maps each kind to one HTTP status."""

from __future__ import annotations


class BerthError(Exception):
    """Base class: a refusal or failure with a message fit for a user."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(BerthError):
    """The request itself is wrong (bad field, impossible limit, bad name)."""

    status = 400


class PolicyDenied(BerthError):
    """The operator's policy refuses it (an image not signed by a trusted key, say)."""

    status = 403


class Unauthorized(BerthError):
    """Credentials are missing or were refused (by Berth or by a registry)."""

    status = 401


class UpstreamFailure(BerthError):
    """A remote service (a registry) failed or sent something unusable."""

    status = 502


class NotFound(BerthError):
    """No such object in the caller's project."""

    status = 404


class Conflict(BerthError):
    """The object exists but its state forbids the operation (name taken, running, in use)."""

    status = 409


class NotModified(BerthError):
    """The operation has nothing to do (already started / already stopped)."""

    status = 304


class Unsupported(BerthError):
    """The backend lacks a declared capability the operation needs."""

    status = 501


class UnsafeContent(InvalidArgument):
    """Hostile or malformed image content: an escaping path, a bomb, a corrupt archive."""


class RuntimeFailure(BerthError):
    """The OCI runtime or conmon failed; the message carries its own words."""

    status = 500
