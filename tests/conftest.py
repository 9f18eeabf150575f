"""Shared fixtures; the autouse leak guard fails any test that leaves a process or fd behind.

Every process the engine starts inherits SWARMDECK_TEST_TOKEN from os.environ, so the guard
finds leftovers by scanning /proc environments: even a daemon that left the process tree
(setsid + double fork) is caught.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from engine.terminals.procs import process_state

if TYPE_CHECKING:
    from collections.abc import Iterator

pytest_plugins = ["tests.sshd_support"]  # the `sshd` fixture: a real sshd on loopback

FUZZ_STEPS = 200
"""Steps of the room fuzz in a plain run; `--steps N` (and `--seed N`) for longer hunts."""
FUZZ_SEED = 1
"""CI walks the same steps every run, so a red CI is a reproducible bug, not bad luck; hunt
with `--seed random` (the seed is printed on failure)."""
FUZZ_SECONDS_PER_STEP = 1.0
"""The fuzz's timeout grows with --steps: a step takes ~0.2 s, up to ~0.6 s on a busy machine."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("swarmdeck")
    group.addoption("--steps", type=int, default=FUZZ_STEPS, help="steps of the room fuzz")
    group.addoption(
        "--seed", default=str(FUZZ_SEED), help=f"room fuzz seed, or 'random' (default {FUZZ_SEED})"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    steps = int(config.getoption("--steps"))
    for item in items:
        if "fuzz_plan" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(30 + steps * FUZZ_SECONDS_PER_STEP))


@pytest.fixture
def fuzz_plan(request: pytest.FixtureRequest) -> tuple[int, int]:
    """(steps, seed) for the room fuzz: `--steps`, and `--seed N` or `--seed random`."""
    seed = str(request.config.getoption("--seed"))
    chosen = random.SystemRandom().randrange(2**32) if seed == "random" else int(seed)
    return int(request.config.getoption("--steps")), chosen


TOKEN = f"SWARMDECK_TEST_TOKEN={uuid.uuid4().hex}".encode()
os.environ["SWARMDECK_TEST_TOKEN"] = TOKEN.split(b"=", 1)[1].decode()


def tagged_processes() -> list[int]:
    """Live (non-zombie) processes other than this one carrying this run's token."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if TOKEN in env.split(b"\0") and process_state(int(entry)) not in ("", "Z"):
            found.append(int(entry))
    return found


def open_fds() -> set[str]:
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds.add(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
    return fds


@pytest.fixture(autouse=True)
def leak_guard() -> Iterator[None]:
    before = open_fds()
    yield
    deadline = time.monotonic() + 3.0
    while True:
        procs = tagged_processes()
        fds = {f for f in open_fds() - before if "ptmx" in f or "pts" in f or "socket" in f}
        if (not procs and not fds) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for pid in procs:  # clean up so one leak does not cascade into every later test
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not procs, f"test left processes behind: {procs}"
    assert not fds, f"test left fds open: {sorted(fds)}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
