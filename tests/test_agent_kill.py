"""Agent → ClickHouse exactly once: the agent process is killed with SIGKILL ten times at
random moments while a log is appended, and the store is stopped for a few seconds and
started again; the store ends up with exactly the lines written, no event twice."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest

from conflictlens.sample_logs.generator import write_log
from tests.chdb_http import StoreServer
from tests.helpers import wait_for
from tests.test_agent import (
    agent_config,
    append_live,
    assert_store_has,
    fresh_database,
    start_agent,
    stop_agent,
    store,  # noqa: F401 (the module's store fixture)
    wait_for_every_line,
)

KILLS = 10


@pytest.mark.slow
def test_ten_kills_and_an_outage_store_every_line_once(
    store: StoreServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    database = fresh_database(store)
    generated = tmp_path / "generated.log"
    truth = write_log(generated, 60_000, hours=3.0, seed=23)
    log = tmp_path / "access.log"
    log.touch()
    config = agent_config(tmp_path, store, database, log)
    output = tmp_path / "agent.out"
    writer = threading.Thread(target=append_live, args=(generated, log, 80, 0.15), daemon=True)
    writer.start()
    pick = random.Random(23)
    agent = start_agent(config, output)
    for kill in range(1, KILLS + 1):
        time.sleep(pick.uniform(0.4, 2.0))
        if kill == 4:
            store.stop()  # an outage: the agent goes on reading and buffering
        if kill == 6:
            store.start()  # back, on the same port and data
        agent.send_signal(signal.SIGKILL)
        agent.wait(30)
        agent = start_agent(config, output)
    writer.join(120)
    assert not writer.is_alive()
    try:
        wait_for_every_line(store, database, truth, 120)
    finally:
        # The clean stop is asked of a running agent: one still starting when the store is
        # complete would die of the signal before its handler is set (the default action).
        wait_for(
            lambda: output.read_text().count("following 1 source") >= KILLS + 1,
            60,
            "the last agent running",
        )
        code = stop_agent(agent)
    assert code == 0, output.read_text()[-2000:]
    assert_store_has(store, database, generated, truth)
    text = output.read_text()
    assert "cannot ship to the store" in text  # the outage was seen, and survived
