"""Fault injection: kill -9 of the registry service AND of its Redis, at random points, many times.

The registry's Redis here is a private ``redis-server`` with the stack's persistence (append-only file,
fsync every second). A backlog of steps is applied while either process is killed at random and
restarted; afterwards every action has exactly one verdict (however often it was answered — a
redelivered answer keeps its event id, so telemetry counts it once), and the allocation in Redis is what
an in-memory registry makes of the same steps: nothing lost, nothing applied twice.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import redis

from mdde_stream.bus import open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.registry import open_registry, run_prefix
from tests.integration.test_registry_service import (
    RECORDS,
    F,
    ResultCollector,
    W,
    assert_replay_matches,
    kafka_url,
    random_steps,
    start_service,
)
from tests.integration.test_secrets import free_port

pytestmark = pytest.mark.integration

TRIALS = 20


class DurableRedis:
    """A redis-server configured like the stack's registry (AOF, everysec) that can be killed and restarted."""

    def __init__(self, home: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: run scripts/install-system-deps.sh"
        self.port = free_port()
        self.args = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(home), "--save", "",
                     "--appendonly", "yes", "--appendfsync", "everysec"]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "redis-server did not come back"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def test_kill_9_of_service_and_redis_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    store_home = tmp_path / "redis"
    store_home.mkdir()
    state = DurableRedis(store_home)
    tag = uuid.uuid4().hex[:10]
    settings = Settings(bus=kafka_url(), state=state.url, topic_prefix=f"t{tag}", partitions=2, session_timeout_s=6)
    bus = open_bus(settings=settings)
    ensure_topics(bus, settings)
    prefix = f"faults:{tag}"
    registry = open_registry(settings, W, F, RECORDS, prefix=run_prefix(prefix, "svc-test"))
    env = {**os.environ, **settings.to_env()}
    args = ["--prefix", prefix, "--group", f"reg-{tag}", "--max-records", "100"]
    log = tmp_path / "service.log"
    # Three episodes of random steps, produced at a steady pace for the whole test, so that every kill
    # lands while the service is busy.
    steps = [
        [a.model_copy(update={"episode": episode, "event_id": f"{episode}-{a.event_id}"}) for a in step]
        for episode in range(3) for step in random_steps(seed=int(tag[:6], 16) + episode)
    ]
    sent = {a.event_id: a for s in steps for a in s}
    stop_producing = threading.Event()

    def produce() -> None:
        with bus.producer() as producer:
            for i, step in enumerate(steps):
                if stop_producing.is_set():
                    return
                for a in step:
                    producer.produce(settings.topic("actions"), a.to_bytes(), key=a.key)
                if i % 20 == 0:  # ~40 steps/s: the stream outlasts 20 kills and restarts
                    producer.flush()
                    time.sleep(0.5)
            producer.flush()

    producer_thread = threading.Thread(target=produce, daemon=True)
    producer_thread.start()
    collector = ResultCollector(bus, settings)
    rng = random.Random(tag)
    service = start_service(env, args, log)
    kills = {"service": 0, "redis": 0}
    try:
        for _ in range(TRIALS):
            seen = collector.wait_for_more(len(collector.ids), timeout_s=90)
            assert seen, f"no progress:\n{log.read_text()[-3000:]}"
            time.sleep(rng.uniform(0.2, 1.0))
            if rng.random() < 0.5:
                service.send_signal(signal.SIGKILL)
                service.wait(10)
                service = start_service(env, args, log)
                kills["service"] += 1
            else:
                state.kill()  # the service backs off, reconnects and reads the uncommitted actions again
                time.sleep(rng.uniform(0.0, 0.5))
                state.start()
                kills["redis"] += 1
        assert len(collector.ids) < len(sent), "the backlog ran out before the last kill: the test proved less"
        producer_thread.join(120)
        collector.wait_for_all(len(sent), timeout_s=180)
        service.send_signal(signal.SIGTERM)
        assert service.wait(30) == 0, f"service did not stop cleanly:\n{log.read_text()[-3000:]}"
    finally:
        stop_producing.set()
        if service.poll() is None:
            service.kill()
        collector.close()
    assert kills["service"] >= 5 and kills["redis"] >= 5, kills

    verdicts: dict[str, set[tuple[bool, int | None]]] = defaultdict(set)
    ids: dict[str, set[str]] = defaultdict(set)
    for r in collector.results:
        verdicts[r.action_event_id].add((r.accepted, r.code))
        ids[r.action_event_id].add(r.event_id)
    assert set(verdicts) == set(sent), f"{len(set(sent) - set(verdicts))} actions never answered"
    assert all(len(v) == 1 for v in verdicts.values()), "an action got two different verdicts"
    assert all(len(v) == 1 for v in ids.values()), "a redelivered answer got a new event id"

    assert_replay_matches(registry.store, steps, verdicts)
    print(f"\n{kills} kills; {len(collector.results)} answers for {len(sent)} actions")
    bus.delete_topics([s.name for s in ensure_topics(bus, settings)])
    bus.close()
    state.stop()
