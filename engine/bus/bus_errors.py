"""Bus errors: one subclass per wire error code, shared by the engine and the clients.

SwarmdeckError
└── BusError                    code "bus-error"
    ├── BadFrameError           "bad-frame"          not JSON, not an object, bad field
    ├── FrameTooLargeError      "frame-too-large"    a line over the frame limit
    ├── PayloadTooLargeError    "payload-too-large"  a payload over the payload limit
    ├── UnknownCommandError     "unknown-command"
    ├── AuthError               "bad-token"          hello with a wrong token
    ├── NotAuthenticatedError   "not-authenticated"  a command before hello
    ├── AccessDeniedError       "access-denied"      the ACL of a queue or group refused
    ├── QueueFullError          "queue-full"         a reliable message met a full mailbox
    ├── UnknownTargetError      "unknown-target"     no such session, request or delivery
    ├── NoRespondersError       "no-responders"      a request nobody is subscribed to
    ├── BusTimeoutError         "timeout"            request/pop/recv waited in vain
    ├── LimitExceededError      "limit-exceeded"     past a per-connection bound (limits.py)
    ├── JournalError            "journal-failed"     the journal could not be written: the
    │                                                message was not acknowledged
    ├── BusClosedError          "closed"             the engine is shutting down
    └── NatsLinkError           "nats-link"          the deck's NATS server is unreachable,
                                                     lacks JetStream, or nats-py is missing

Stdlib-only (clients import it); `error_for(code, message)` rebuilds an error from a frame.
"""

from __future__ import annotations

from engine.errors import SwarmdeckError


class BusError(SwarmdeckError):
    """Base of every bus error; `code` is what travels in an error frame."""

    code = "bus-error"


class BadFrameError(BusError):
    code = "bad-frame"


class FrameTooLargeError(BusError):
    code = "frame-too-large"


class PayloadTooLargeError(BusError):
    code = "payload-too-large"


class UnknownCommandError(BusError):
    code = "unknown-command"


class AuthError(BusError):
    code = "bad-token"


class NotAuthenticatedError(BusError):
    code = "not-authenticated"


class AccessDeniedError(BusError):
    code = "access-denied"


class QueueFullError(BusError):
    code = "queue-full"


class UnknownTargetError(BusError):
    code = "unknown-target"


class NoRespondersError(BusError):
    code = "no-responders"


class BusTimeoutError(BusError):
    code = "timeout"


class LimitExceededError(BusError):
    code = "limit-exceeded"


class JournalError(BusError):
    code = "journal-failed"


class BusClosedError(BusError):
    code = "closed"


class NatsLinkError(BusError):
    code = "nats-link"


ERRORS: dict[str, type[BusError]] = {
    cls.code: cls
    for cls in (
        BusError,
        BadFrameError,
        FrameTooLargeError,
        PayloadTooLargeError,
        UnknownCommandError,
        AuthError,
        NotAuthenticatedError,
        AccessDeniedError,
        QueueFullError,
        UnknownTargetError,
        NoRespondersError,
        BusTimeoutError,
        LimitExceededError,
        JournalError,
        BusClosedError,
        NatsLinkError,
    )
}


def error_for(code: str, message: str) -> BusError:
    """The error class for a wire code; unknown codes stay a plain BusError."""
    error = ERRORS.get(code, BusError)(message)
    if error.code != code:
        error.code = code
    return error
