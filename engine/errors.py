"""One error tree for everything the engine raises on purpose.

SwarmdeckError
├── DeckError                  the deck file is invalid (every problem listed)
├── InvalidCommandError        a command's fields are wrong (names the field and why)
├── TerminalError              a PTY or its launcher misbehaved
│   ├── SpawnError             a process could not be started
│   └── HostError              a [[host]] (docs/hosts.md) failed
│       ├── HostKeyError       its host key is not in known_hosts (names the fingerprint)
│       ├── HostUnreachableError  no connection (names the host and why)
│       ├── HostLostError      the connection dropped under a running job
│       └── HostForwardError   its sshd refused to forward a socket (the bus's)
├── PoolError
│   ├── PoolTimeoutError       no terminal within acquire_timeout (names the pool state)
│   └── PoolClosedError        the pool is shutting down
├── SchedulerError             a scheduling command with a bad value (e.g. max_parallel)
└── SessionError
    ├── UnknownSessionError    no session by that name
    ├── InvalidTransitionError a state change the transition table forbids
    └── WorkspaceError         an isolated workspace (directory, git worktree) failed
"""

from __future__ import annotations


class SwarmdeckError(Exception):
    """Base of every deliberate swarmdeck error."""


class DeckError(SwarmdeckError):
    """A deck failed validation; `problems` holds one line per problem."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class InvalidCommandError(SwarmdeckError):
    """A command (engine/commands.py) with a missing or wrong field."""


class TerminalError(SwarmdeckError):
    """A terminal (PTY plus launcher) failed or died."""


class SpawnError(TerminalError):
    """A process could not be started on a terminal."""


class HostError(TerminalError):
    """A host sessions run on over SSH failed; the message names the host."""


class HostKeyError(HostError):
    """The host's key is not in known_hosts: refused (the message gives its fingerprint)."""


class HostUnreachableError(HostError):
    """No SSH connection to the host (refused, timed out, authentication failed...)."""


class HostLostError(HostError):
    """The host's connection dropped while a job ran there: how the job ended is unknown."""


class HostForwardError(HostError):
    """The host's sshd refused to forward a Unix socket (AllowStreamLocalForwarding)."""


class WarmRefusedError(SpawnError):
    """A host's sshd refused a warm terminal's control stream (a Unix socket on the host,
    AllowStreamLocalForwarding): its sessions can only run in fresh terminals."""


class PoolError(SwarmdeckError):
    """The terminal pool could not serve a request."""


class PoolTimeoutError(PoolError):
    """No terminal became free within acquire_timeout."""


class PoolClosedError(PoolError):
    """The pool is closed or closing."""


class SchedulerError(SwarmdeckError):
    """A scheduling command could not be carried out (bad value, named in the message)."""


class SessionError(SwarmdeckError):
    """A session command could not be carried out."""


class UnknownSessionError(SessionError):
    """No session has the given name."""


class WorkspaceError(SessionError):
    """An isolated workspace could not be created; the session fails without starting."""


class InvalidTransitionError(SessionError):
    """A state change that the transition table does not allow."""

    def __init__(self, session: str, current: str, target: str) -> None:
        self.session = session
        self.current = current
        self.target = target
        super().__init__(f"session {session!r}: cannot go from {current} to {target}")
