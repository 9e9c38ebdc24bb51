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


class OutOfSpace(BerthError):
    """The disk that holds Berth's data on a host is full: the work stopped and what it had
    made is gone (as after any failure)."""

    status = 507


NO_SPACE = ("no space left on device: Berth's storage on this host is full (remove what is "
            "not used: berth system prune, image prune, volume prune)")


def out_of_space(exc: BaseException) -> OutOfSpace | None:
    """An OutOfSpace when the exception, or one that caused it, is the disk being full:
    ENOSPC or EDQUOT, or SQLite's "database or disk is full". Its own message would name a
    path on the host, which a tenant has no business seeing."""
    import errno

    seen: BaseException | None = exc
    for _ in range(8):  # causes chain; a cycle must not hang
        if seen is None:
            return None
        if isinstance(seen, OutOfSpace):
            return seen
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return OutOfSpace(NO_SPACE)
        if type(seen).__name__ == "OperationalError" and "disk is full" in str(seen):
            return OutOfSpace(NO_SPACE)
        seen = seen.__cause__ or seen.__context__
    return None
