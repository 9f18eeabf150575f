"""The terminal pool: FIFO leasing, timeouts, recycling, replacement, warmth, figures."""

from __future__ import annotations

import os
import signal
from typing import Any

import anyio
import pytest

from engine.deck.spec import PoolSpec
from engine.errors import PoolTimeoutError
from engine.terminals.pool import open_pool
from engine.terminals.pooled import PooledTerminal
from engine.terminals.terminal import Job

pytestmark = pytest.mark.anyio


def spec(**fields: Any) -> PoolSpec:
    return PoolSpec(**{"size": 1, "warm": 1, "acquire_timeout": 10, **fields})


async def test_waiters_are_served_in_arrival_order(tmp_path: object) -> None:
    async with open_pool(spec()) as pool:
        holder = await pool.acquire()
        order: list[int] = []

        async def wait_turn(i: int) -> None:
            term = await pool.acquire()
            order.append(i)
            await anyio.sleep(0.01)
            pool.release(term)

        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(wait_turn, i)
                await anyio.sleep(0.02)  # arrive one after another
            assert pool.statistics().waiters == 5
            pool.release(holder)
        assert order == [0, 1, 2, 3, 4]


async def test_a_released_terminal_is_handed_straight_to_the_longest_waiter() -> None:
    async with open_pool(spec()) as pool:
        first = await pool.acquire()
        got: list[object] = []

        async def waiter() -> None:
            got.append(await pool.acquire())

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.05)
            pool.release(first)
        assert got == [first]
        assert pool.statistics().created == 1
        pool.release(first)


async def test_acquire_timeout_names_the_pool_state() -> None:
    async with open_pool(spec(acquire_timeout=0.2)) as pool:
        held = await pool.acquire()
        with pytest.raises(PoolTimeoutError, match=r"within 0.2s \(pool: capacity 1, in use 1"):
            await pool.acquire()
        assert pool.statistics().waiters == 0
        pool.release(held)


async def test_a_terminal_is_replaced_after_recycle_after_leases() -> None:
    async with open_pool(spec(recycle_after=2)) as pool:
        ids = []
        for _ in range(5):
            term = await pool.acquire()
            assert isinstance(term, PooledTerminal)
            ids.append(term.id)
            await term.start(Job(["true"]), lambda _data: None)
            await term.wait()
            pool.release(term)
        assert ids[0] == ids[1] != ids[2] == ids[3] != ids[4]
        assert pool.statistics().recycled == 2


async def test_a_dead_terminal_is_replaced_on_lease() -> None:
    async with open_pool(spec()) as pool:
        term = await pool.acquire()
        assert isinstance(term, PooledTerminal)
        pool.release(term)
        assert term.launcher_pid is not None
        os.kill(term.launcher_pid, signal.SIGKILL)
        await anyio.sleep(0.1)
        fresh = await pool.acquire()
        assert fresh is not term
        assert isinstance(fresh, PooledTerminal)
        assert await fresh.check_health()
        stats = pool.statistics()
        assert stats.recycled == 1
        assert stats.created == 2
        pool.release(fresh)


async def test_warm_terminals_are_ready_before_the_first_lease_and_kept_warm() -> None:
    async with open_pool(spec(size=3, warm=2)) as pool:
        assert pool.statistics().idle == 2
        a = await pool.acquire()
        b = await pool.acquire()
        with anyio.fail_after(10):
            while pool.statistics().idle < 1:  # refilled up to capacity
                await anyio.sleep(0.01)
        assert pool.statistics().size == 3
        pool.release(a)
        pool.release(b)


async def test_terminals_idle_past_idle_timeout_are_replaced() -> None:
    async with open_pool(spec(idle_timeout=0.2)) as pool:
        first = pool.statistics().created
        with anyio.fail_after(10):
            while pool.statistics().recycled < 1:
                await anyio.sleep(0.02)
            while pool.statistics().idle < 1:
                await anyio.sleep(0.02)
        assert pool.statistics().created > first


async def test_statistics_report_utilisation_saturation_and_contention() -> None:
    async with open_pool(spec(size=2, warm=0)) as pool:
        a = await pool.acquire()
        b = await pool.acquire()

        async def late() -> None:
            pool.release(await pool.acquire())

        async with anyio.create_task_group() as tg:
            tg.start_soon(late)
            await anyio.sleep(0.05)
            stats = pool.statistics()
            assert (stats.in_use, stats.waiters, stats.capacity) == (2, 1, 2)
            assert stats.utilisation == 1.0
            assert stats.saturation == 0.5
            pool.release(a)
        pool.release(b)
        stats = pool.statistics()
        assert stats.leases == 3
        assert stats.wait_p99 >= 0.04
        assert stats.contention == pytest.approx(1 / 3)  # one of three leases waited


async def test_init_failure_is_a_clear_spawn_error() -> None:
    from engine.errors import SpawnError

    with pytest.raises(SpawnError, match=r"pool init failed \(shell exit 3\); it printed: broken"):
        async with open_pool(spec(warm=0, init="echo broken; exit 3")) as pool:
            await pool.acquire()
