"""The operator's actions on the whole run: pause or resume every shown session, change
max_parallel live, the alerts (a notice each, the active ones in the pool panel, the
history on `!`), and the sessions waiting for the operator (a mark in the list and on
the pane; the bell and notify-send if config.toml asks, tui/attention_alert.py), and the
deck's hosts (their connections in the pool panel, a notice when one drops or is back, and
once when its sshd refuses to forward the bus).

"Shown" is what the session list's filter lets through: with no filter, the engine's
bulk commands act on every session at once (`pause_all` / `resume_all`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from engine import AlertRaised, SessionState, SwarmdeckError
from tui.attention_alert import AttentionAlert, alert
from tui.operations import Operations
from tui.screens.alerts import AlertsScreen
from tui.screens.search import PromptScreen
from tui.widgets.pool_panel import PoolPanel
from tui.wording import counted

if TYPE_CHECKING:
    from engine import AlertCleared, HostStatistics
    from tui.bridge import AttentionUpdated


class FleetOperations(Operations):
    attention_alert = AttentionAlert()
    hosts_up: dict[str, bool] | None = None  # each host's last known state, once seen
    hosts_without_bus: frozenset[str] = frozenset()  # told already: their sessions lack it
    hosts_without_warm: frozenset[str] = frozenset()  # told already: fresh terminals only

    def watch_hosts(self, panel: PoolPanel) -> None:
        """The hosts' figures in the panel; a notice when one drops (its sessions go
        `lost`) or comes back, so the room says which machine failed."""
        hosts = self.engine.host_statistics()
        panel.show_hosts(hosts)
        before, self.hosts_up = self.hosts_up, {h.host: h.connected for h in hosts}
        for h in hosts:
            if before is None or before.get(h.host) is None or before[h.host] == h.connected:
                continue
            if h.connected:
                self.say(f"host {h.host} is connected again", title="host back")
            else:
                why = h.last_error or "connection lost"
                self.say(f"host {h.host}: {why}", title="host down", severity="warning")
        self._say_host_problems(hosts)

    def _say_host_problems(self, hosts: list[HostStatistics]) -> None:
        """Once per host and problem: its sshd would not forward the bus, so `swarmdeck bus`
        fails in its sessions (they run), or refused warm terminals (fresh ones run)."""
        for h in hosts:
            if h.bus_problem is not None and h.host not in self.hosts_without_bus:
                self.hosts_without_bus |= {h.host}
                self.say(h.bus_problem, title="no bus on host", severity="warning")
            if h.warm_problem is not None and h.host not in self.hosts_without_warm:
                self.hosts_without_warm |= {h.host}
                self.say(h.warm_problem, title="no warm terminals on host", severity="warning")

    def on_attention_updated(self, message: AttentionUpdated) -> None:
        if not self.room_ready:
            return
        info = self.engine.session_info(message.event.session)
        self.session_list.update_info(info)
        pane = self.grid.panes.get(info.name)
        if pane is not None:
            pane.set_attention(info.attention)
        alert(self.attention_alert, message.event, self.bell)

    def _shown_in(self, state: SessionState) -> list[str]:
        infos = {i.name: i for i in self.engine.list_sessions()}
        return [n for n in self.session_list.shown() if n in infos and infos[n].state is state]

    def action_pause_all(self) -> None:
        self._bulk("pause", SessionState.ACTIVE)

    def action_resume_all(self) -> None:
        self._bulk("resume", SessionState.PAUSED)

    def _bulk(self, verb: str, state: SessionState) -> None:
        if self.read_only:
            self.say("read-only viewer", title=f"{verb} all unavailable", severity="warning")
            return
        filtered = bool(self.session_list.filter)
        names = self._shown_in(state)
        if not names:
            self.say(f"no {state} session to {verb}", severity="warning")
            return

        async def run() -> None:
            try:
                if filtered:
                    async with anyio.create_task_group() as tg:
                        for name in names:
                            tg.start_soon(getattr(self.engine, verb), name)
                    done = names
                elif verb == "pause":
                    done = await self.engine.pause_all()
                else:
                    done = await self.engine.resume_all()
            except SwarmdeckError as exc:
                self.say(str(exc), title="engine refused", severity="error")
                return
            self.say(f"{verb}d {counted(len(done), 'session')}")

        self.run_worker(run(), group="engine-commands")

    def action_set_parallel(self) -> None:
        if self.read_only:
            self.say("read-only viewer", title="max_parallel unavailable", severity="warning")
            return
        current = self.engine.contention_statistics()

        def answered(text: str | None) -> None:
            if not text:
                return
            value: int | str = text.strip()
            if value != "auto":
                try:
                    value = int(text)
                except ValueError:
                    self.say(f"not a number or 'auto': {text!r}", severity="error")
                    return
            self._engine_call(
                f"max_parallel set to {value}", lambda: self.engine.set_parallel(value)
            )

        size = self.engine.deck.pool.size
        prompt = PromptScreen(
            f"max_parallel, local sessions (1..{size} or auto)", "auto", str(current.slots)
        )
        self.push_screen(prompt, answered)

    def action_alerts(self) -> None:
        active = set(self.active_alerts())
        self.push_screen(AlertsScreen(self.engine.alert_history(), active))

    def active_alerts(self) -> dict[tuple[str, str], AlertRaised]:
        """The alerts in force: each (alert, subject) whose latest event is a raise."""
        latest: dict[tuple[str, str], AlertRaised | AlertCleared] = {}
        for event in self.engine.alert_history():
            latest[(event.alert, event.subject)] = event
        return {k: e for k, e in latest.items() if isinstance(e, AlertRaised)}

    def show_alert(self, event: AlertRaised | AlertCleared) -> None:
        """A notice for each raise and clear; the ones in force listed in the pool panel."""
        if isinstance(event, AlertRaised):
            self.say(event.text, title="alert", severity="warning")
        else:
            self.say(event.text)
        texts = [e.text for e in self.active_alerts().values()]
        self.screen_stack[0].query_one(PoolPanel).show_alerts(texts)
