"""The engine's side of "waiting for me": the idle check and the bus topic `attention`.

Each session's Attention (engine/sessions/attention.py) sees its output and commands as
they happen; two things need a task: noticing quiet (every CHECK_EVERY s, asking /proc
only about sessions quiet long enough), and reading what sessions publish on the topic
`attention`. The bus authenticates each connection's session by its token and the
peer's credentials (engine/bus/tokens.py), so a message's sender is the session that
asks for the operator; the operator's own messages on the topic mark nobody.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.bus.broker import MessageBus
    from engine.sessions.session import Session

TOPIC = "attention"
LISTENER = "@attention"  # its own subscription mailbox, apart from the operator's
CHECK_EVERY = 0.5


async def watch_idle(sessions: Mapping[str, Session]) -> None:
    while True:
        await anyio.sleep(CHECK_EVERY)
        now = time.monotonic()
        for session in list(sessions.values()):
            session.check_idle(now)


async def watch_requests(bus: MessageBus, sessions: Mapping[str, Session]) -> None:
    with bus.subscribe(LISTENER, TOPIC) as subscription:
        async for message in subscription:
            session = sessions.get(message.sender)
            if session is not None:
                session.attention.published(message.payload)
