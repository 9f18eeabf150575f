"""The engine's public face: every name the control room, the CLI and other clients may use.

Everything else under engine/ is the engine's own; tests/test_import_hygiene.py checks that tui/
imports only these names (and engine.remote's). Names are imported lazily (PEP 562).

Size: a table of public names, no logic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy_names import lazy_getattr

if TYPE_CHECKING:
    from engine.api import (
        EngineAPI as EngineAPI,
    )
    from engine.bus.stealing import (
        QueueBalance as QueueBalance,
    )
    from engine.deck.durations import (
        parse_duration as parse_duration,
    )
    from engine.deck.fork import (
        fork_name as fork_name,
    )
    from engine.deck.priorities import (
        PRIORITY_NAMES as PRIORITY_NAMES,
    )
    from engine.deck.priorities import (
        PRIORITY_RANK as PRIORITY_RANK,
    )
    from engine.deck.reference import (
        deck_schema as deck_schema,
    )
    from engine.deck.spec import (
        DeckSpec as DeckSpec,
    )
    from engine.deck.spec import (
        PoolSpec as PoolSpec,
    )
    from engine.deck.spec import (
        SessionSpec as SessionSpec,
    )
    from engine.deck.spec import (
        load_deck as load_deck,
    )
    from engine.deck.spec import (
        parse_deck as parse_deck,
    )
    from engine.deck.subset import (
        only_sessions as only_sessions,
    )
    from engine.engine import (
        Engine as Engine,
    )
    from engine.engine import (
        default_run_dir as default_run_dir,
    )
    from engine.engine import (
        open_engine as open_engine,
    )
    from engine.errors import (
        DeckError as DeckError,
    )
    from engine.errors import (
        InvalidTransitionError as InvalidTransitionError,
    )
    from engine.errors import (
        PoolClosedError as PoolClosedError,
    )
    from engine.errors import (
        PoolError as PoolError,
    )
    from engine.errors import (
        PoolTimeoutError as PoolTimeoutError,
    )
    from engine.errors import (
        SchedulerError as SchedulerError,
    )
    from engine.errors import (
        SessionError as SessionError,
    )
    from engine.errors import (
        SpawnError as SpawnError,
    )
    from engine.errors import (
        SwarmdeckError as SwarmdeckError,
    )
    from engine.errors import (
        TerminalError as TerminalError,
    )
    from engine.errors import (
        UnknownSessionError as UnknownSessionError,
    )
    from engine.errors import (
        WorkspaceError as WorkspaceError,
    )
    from engine.events import (
        BUS_EVENTS as BUS_EVENTS,
    )
    from engine.events import (
        AlertCleared as AlertCleared,
    )
    from engine.events import (
        AlertRaised as AlertRaised,
    )
    from engine.events import (
        AttentionChanged as AttentionChanged,
    )
    from engine.events import (
        BusEvent as BusEvent,
    )
    from engine.events import (
        BusJournalFailed as BusJournalFailed,
    )
    from engine.events import (
        BusMessageAcked as BusMessageAcked,
    )
    from engine.events import (
        BusMessageDeadLettered as BusMessageDeadLettered,
    )
    from engine.events import (
        BusMessageDropped as BusMessageDropped,
    )
    from engine.events import (
        BusMessageExpired as BusMessageExpired,
    )
    from engine.events import (
        BusMessageRedelivered as BusMessageRedelivered,
    )
    from engine.events import (
        BusMessageRouted as BusMessageRouted,
    )
    from engine.events import (
        BusRequestRefused as BusRequestRefused,
    )
    from engine.events import (
        BusTrafficSampled as BusTrafficSampled,
    )
    from engine.events import (
        ClientAttached as ClientAttached,
    )
    from engine.events import (
        ClientDetached as ClientDetached,
    )
    from engine.events import (
        CommandRefused as CommandRefused,
    )
    from engine.events import (
        ContentionSampled as ContentionSampled,
    )
    from engine.events import (
        Event as Event,
    )
    from engine.events import (
        ParallelismAdjusted as ParallelismAdjusted,
    )
    from engine.events import (
        PoolSampled as PoolSampled,
    )
    from engine.events import (
        RunAborted as RunAborted,
    )
    from engine.events import (
        RunFinished as RunFinished,
    )
    from engine.events import (
        SchedulerSampled as SchedulerSampled,
    )
    from engine.events import (
        ScreenChanged as ScreenChanged,
    )
    from engine.events import (
        SessionDetailChanged as SessionDetailChanged,
    )
    from engine.events import (
        SessionStateChanged as SessionStateChanged,
    )
    from engine.events import (
        TerminalRecycled as TerminalRecycled,
    )
    from engine.events import (
        is_bus_event as is_bus_event,
    )
    from engine.rundir import (
        hold_if_idle as hold_if_idle,
    )
    from engine.screen import (
        DEFAULT_STYLE as DEFAULT_STYLE,
    )
    from engine.screen import (
        ColorValue as ColorValue,
    )
    from engine.screen import (
        ScreenDelta as ScreenDelta,
    )
    from engine.screen import (
        ScreenSnapshot as ScreenSnapshot,
    )
    from engine.screen import (
        ScreenStatus as ScreenStatus,
    )
    from engine.screen import (
        Style as Style,
    )
    from engine.screen import (
        StyledLine as StyledLine,
    )
    from engine.screen import (
        TerminalModes as TerminalModes,
    )
    from engine.screen import (
        line_text as line_text,
    )
    from engine.sessions.info import (
        AttemptInfo as AttemptInfo,
    )
    from engine.sessions.info import (
        SessionInfo as SessionInfo,
    )
    from engine.states import (
        FINAL_STATES as FINAL_STATES,
    )
    from engine.states import (
        LIVE_STATES as LIVE_STATES,
    )
    from engine.states import (
        SessionState as SessionState,
    )
    from engine.states import (
        can_transition as can_transition,
    )
    from engine.statistics import (
        ContentionStatistics as ContentionStatistics,
    )
    from engine.statistics import (
        HostStatistics as HostStatistics,
    )
    from engine.statistics import (
        PoolStatistics as PoolStatistics,
    )
    from engine.statistics import (
        SchedulerStatistics as SchedulerStatistics,
    )
    from engine.terminals.procs import (
        signal_groups as signal_groups,
    )
    from engine.terminals.pty import (
        open_pty as open_pty,
    )
    from engine.terminals.pty import (
        read_available as read_available,
    )
    from engine.terminals.pty import (
        set_winsize as set_winsize,
    )
    from engine.terminals.pty import (
        spawn_on_pty as spawn_on_pty,
    )

_WHERE: dict[str, str] = {
    "SwarmdeckError": "engine.errors",
    "DeckError": "engine.errors",
    "TerminalError": "engine.errors",
    "SpawnError": "engine.errors",
    "PoolError": "engine.errors",
    "PoolTimeoutError": "engine.errors",
    "PoolClosedError": "engine.errors",
    "SchedulerError": "engine.errors",
    "SessionError": "engine.errors",
    "UnknownSessionError": "engine.errors",
    "WorkspaceError": "engine.errors",
    "InvalidTransitionError": "engine.errors",
    "SessionState": "engine.states",
    "FINAL_STATES": "engine.states",
    "LIVE_STATES": "engine.states",
    "can_transition": "engine.states",
    "Event": "engine.events",
    "SessionDetailChanged": "engine.events",
    "SessionStateChanged": "engine.events",
    "ScreenChanged": "engine.events",
    "PoolSampled": "engine.events",
    "TerminalRecycled": "engine.events",
    "RunFinished": "engine.events",
    "ParallelismAdjusted": "engine.events",
    "RunAborted": "engine.events",
    "SchedulerSampled": "engine.events",
    "ContentionSampled": "engine.events",
    "AlertRaised": "engine.events",
    "AlertCleared": "engine.events",
    "AttentionChanged": "engine.events",
    "BusMessageRouted": "engine.events",
    "BusMessageAcked": "engine.events",
    "BusMessageRedelivered": "engine.events",
    "BusMessageExpired": "engine.events",
    "BusMessageDropped": "engine.events",
    "BusMessageDeadLettered": "engine.events",
    "BusJournalFailed": "engine.events",
    "BusRequestRefused": "engine.events",
    "ClientAttached": "engine.events",
    "ClientDetached": "engine.events",
    "CommandRefused": "engine.events",
    "BusTrafficSampled": "engine.events",
    "BusEvent": "engine.events",
    "BUS_EVENTS": "engine.events",
    "is_bus_event": "engine.events",
    "ColorValue": "engine.screen",
    "Style": "engine.screen",
    "DEFAULT_STYLE": "engine.screen",
    "StyledLine": "engine.screen",
    "TerminalModes": "engine.screen",
    "ScreenSnapshot": "engine.screen",
    "ScreenDelta": "engine.screen",
    "ScreenStatus": "engine.screen",
    "line_text": "engine.screen",
    "EngineAPI": "engine.api",
    "Engine": "engine.engine",
    "open_engine": "engine.engine",
    "default_run_dir": "engine.engine",
    "hold_if_idle": "engine.rundir",
    "deck_schema": "engine.deck.reference",
    "DeckSpec": "engine.deck.spec",
    "SessionSpec": "engine.deck.spec",
    "PoolSpec": "engine.deck.spec",
    "load_deck": "engine.deck.spec",
    "parse_deck": "engine.deck.spec",
    "only_sessions": "engine.deck.subset",
    "parse_duration": "engine.deck.durations",
    "fork_name": "engine.deck.fork",
    "PRIORITY_NAMES": "engine.deck.priorities",
    "PRIORITY_RANK": "engine.deck.priorities",
    "SessionInfo": "engine.sessions.info",
    "AttemptInfo": "engine.sessions.info",
    "PoolStatistics": "engine.statistics",
    "SchedulerStatistics": "engine.statistics",
    "ContentionStatistics": "engine.statistics",
    "HostStatistics": "engine.statistics",
    "QueueBalance": "engine.bus.stealing",
    "open_pty": "engine.terminals.pty",
    "read_available": "engine.terminals.pty",
    "set_winsize": "engine.terminals.pty",
    "spawn_on_pty": "engine.terminals.pty",
    "signal_groups": "engine.terminals.procs",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
