"""The registry service on real Redis + Kafka: kill -9 mid-stream, restart, nothing lost or doubled.

A producer thread sends steps at a steady pace while the service runs as a subprocess; the test
kills it (SIGKILL) at random moments, restarts it, and finally stops it with SIGTERM. Then every
action must have a result, every action id exactly one distinct verdict, and the allocation in
Redis must equal an in-memory replay of the same steps in the same order.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from mdde_stream.bus import open_bus
from mdde_stream.bus.base import TopicPartition
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.events import ActionKind, ActionResult, ActionSubmitted, DeadLetter, decode_event
from mdde_stream.registry import AllocationStore, MemoryStore, Registry, fragment_layout, open_registry, run_prefix
from mdde_stream.registry.redis_store import RedisStore
from mdde_stream.registry.testing import redis_state_url, require_redis, unique_prefix

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
W, F, RECORDS, STEPS, MAX_KILLS = 4, 20, 1_000, 1_500, 6


def kafka_url() -> str:
    url = os.environ.get("MDDE_BUS", "")
    return url if url.startswith("kafka://") else "kafka://127.0.0.1:9092"


def random_steps(seed: int) -> list[list[ActionSubmitted]]:
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(W)]
    steps = []
    for s in range(STEPS):
        size = rng.choice([W, W, W, 2, 1])
        agents = sorted(rng.sample(range(W), size), key=lambda _: rng.random())
        actions = []
        for a in agents:
            kind = rng.choice([ActionKind.COPY, ActionKind.COPY, ActionKind.DELETE, ActionKind.SKIP])
            actions.append(ActionSubmitted(
                run_id="svc-test", episode=0, step=s, agent=nodes[a], agent_index=a, action_index=0, kind=kind,
                fragment=f"f{rng.randrange(F)}", source=rng.choice(nodes) if kind is ActionKind.COPY else None,
                target=nodes[a], step_size=size,
            ))
        steps.append(actions)
    return steps


def start_service(env: dict[str, str], args: list[str], log: Path) -> subprocess.Popen:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "mdde_stream", "service", "registry", *args], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT)


def assert_replay_matches(
    store: AllocationStore, steps: list[list[ActionSubmitted]], verdicts: dict[str, set[tuple[bool, int | None]]]
) -> None:
    """The same steps replayed on an in-memory registry give the verdicts seen, and ``store``'s allocation
    and data-move queue (nothing lost, nothing applied twice: one queued move per accepted copy/delete)."""
    _, ranges, alloc = fragment_layout(RECORDS, W, F)
    replay = MemoryStore()
    replay.setup(list(alloc), list(ranges), alloc, ranges)
    replay_registry = Registry(replay)
    for step in steps:
        for r in replay_registry.apply_actions(step):
            assert verdicts[r.action_event_id] == {(r.accepted, r.code)}, f"verdict differs at step {step[0].step}"
    assert np.array_equal(store.matrix(), replay.matrix()), "the allocation in the store differs from the replay"
    assert [(m.kind, m.fragment, m.target) for m in store.pending_moves()] == [
        (m.kind, m.fragment, m.target) for m in replay.pending_moves()
    ], "a data move was queued twice or lost"


def test_kill_9_mid_stream_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    state_url = redis_state_url()
    require_redis(state_url)
    bus_url = kafka_url()
    tag = uuid.uuid4().hex[:10]
    settings = Settings(bus=bus_url, state=state_url, topic_prefix=f"t{tag}", partitions=2, session_timeout_s=6)
    try:
        bus = open_bus(settings=settings)
        ensure_topics(bus, settings)
    except Exception as exc:  # noqa: BLE001 - turn any connection failure into a clear test failure
        pytest.fail(f"Kafka at {bus_url} is not usable ({exc}); start the local stack or set MDDE_BUS")
    prefix = unique_prefix("svc")
    registry = open_registry(settings, W, F, RECORDS, prefix=run_prefix(prefix, "svc-test"))  # the stage's part
    env = {**os.environ, "MDDE_BUS": bus_url, "MDDE_STATE": state_url, "MDDE_TOPIC_PREFIX": settings.topic_prefix,
           "MDDE_PARTITIONS": "2", "MDDE_SESSION_TIMEOUT_S": "6", "PYTHONPATH": str(ROOT)}
    args = ["--prefix", prefix, "--group", f"reg-{tag}", "--max-records", "200"]
    log = tmp_path / "service.log"
    steps = random_steps(seed=int(tag[:6], 16))
    actions_topic = settings.topic("actions")
    with bus.producer() as producer:  # a backlog, so the service is busy applying when it is killed
        for i, step in enumerate(steps):
            for a in step:
                producer.produce(actions_topic, a.to_bytes(), key=a.key)
            if i == STEPS // 2:
                producer.produce(actions_topic, b"{not json", key=b"svc-test")  # must be dead-lettered
        producer.flush()
    sent = {a.event_id: a for s in steps for a in s}
    collector = ResultCollector(bus, settings)
    store = registry.store
    assert isinstance(store, RedisStore)
    rng = random.Random(tag)
    service = start_service(env, args, log)
    mid_batch_kills = 0
    try:
        kills = 0
        while kills < MAX_KILLS and (kills < 2 or mid_batch_kills < 2) and len(collector.ids) < len(sent) - 400:
            seen = collector.wait_for_more(len(collector.ids), timeout_s=60)
            assert seen, f"service produced no results:\n{log.read_text()[-3000:]}"
            time.sleep(rng.uniform(0.0, 0.15))
            service.send_signal(signal.SIGKILL)
            service.wait(10)
            kills += 1
            time.sleep(1.0)  # let the collector catch up with what was produced before the kill
            applied = sum(v is not None for v in (store.verdict_of(e) for e in sent))
            answered = len(collector.ids)
            mid_batch_kills += applied > answered  # applied in Redis, never reported: redelivery must fix it
            service = start_service(env, args, log)
        collector.wait_for_all(len(sent), timeout_s=120)
        service.send_signal(signal.SIGTERM)
        assert service.wait(30) == 0, f"service did not stop cleanly on SIGTERM:\n{log.read_text()[-3000:]}"
    finally:
        if service.poll() is None:
            service.kill()
        collector.close()
    results = collector.results
    assert mid_batch_kills >= 1, "no kill landed between applying and reporting a batch; the test proved nothing"

    # every action answered; one distinct verdict per action id (duplicates are redeliveries)
    verdicts: dict[str, set[tuple[bool, int | None]]] = defaultdict(set)
    for r in results:
        verdicts[r.action_event_id].add((r.accepted, r.code))
    assert set(verdicts) == set(sent), f"{len(set(sent) - set(verdicts))} actions never answered"
    assert all(len(v) == 1 for v in verdicts.values()), "an action got two different verdicts"

    assert_replay_matches(store, steps, verdicts)
    assert store.matrix().sum(axis=0).min() >= 1

    letters = read_topic(bus, settings.topic(DeadLetter.TOPIC), 1, timeout_s=20)
    assert any(isinstance(e, DeadLetter) and e.source_topic == actions_topic for e in letters)
    print(f"\n{kills} kills ({mid_batch_kills} between apply and report), {len(results)} results for {len(sent)} actions "
          f"({len(results) - len(sent)} redelivered duplicates)")
    registry.store.wipe()
    bus.delete_topics([s.name for s in ensure_topics(bus, settings)])
    bus.close()


def read_topic(bus, topic: str, expected: int, timeout_s: float) -> list:  # noqa: ANN001
    partitions = bus.list_topics()[topic]
    consumer = bus.consumer(f"reader-{uuid.uuid4().hex[:8]}", offset_reset="earliest")
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    for p in range(partitions):
        consumer.seek(TopicPartition(topic, p), 0)
    events = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(events) < expected and time.monotonic() < deadline:
            events.extend(decode_event(r.value) for r in consumer.poll(0.5, 1000))
    finally:
        consumer.close()
    return events


class ResultCollector:
    """Reads the results topic in a thread, keeping duplicates (they are redeliveries)."""

    def __init__(self, bus, settings: Settings) -> None:  # noqa: ANN001
        topic = settings.topic(ActionResult.TOPIC)
        self.consumer = bus.consumer(f"collector-{uuid.uuid4().hex[:8]}", offset_reset="earliest")
        self.consumer.assign([TopicPartition(topic, p) for p in range(bus.list_topics()[topic])])
        for tp in self.consumer.assignment():
            self.consumer.seek(tp, 0)
        self.results: list[ActionResult] = []
        self.ids: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for r in self.consumer.poll(0.1, 1000):
                event = decode_event(r.value, (ActionResult,))
                self.results.append(event)  # type: ignore[arg-type]
                self.ids.add(event.action_event_id)  # type: ignore[attr-defined]

    def wait_for_more(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while len(self.ids) <= count and time.monotonic() < deadline:
            time.sleep(0.005)
        return len(self.ids) > count

    def wait_for_all(self, expected: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.ids) < expected:
            assert time.monotonic() < deadline, f"only {len(self.ids)} of {expected} actions answered in {timeout_s}s"
            time.sleep(0.05)
        time.sleep(1.0)  # duplicates produced just before the last stop arrive too

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.consumer.close()


def test_service_waits_for_a_whole_step_and_never_commits_past_it(tmp_path: Path) -> None:
    """On the embedded log (real SQLite backend): grouping, agent order and the commit floor."""
    from mdde_stream.services.registry import RegistryService, RunRegistries

    settings = Settings(bus="", state="memory", data_dir=tmp_path, partitions=1)
    bus = open_bus(settings=settings)
    ensure_topics(bus, settings)
    registry = open_registry(settings, W, F, RECORDS)
    registries = RunRegistries(settings)
    registries.register("emb", registry)
    service = RegistryService(registries, bus, settings, group_id="reg-embedded", poll_timeout_s=0.05)
    topic = settings.topic("actions")

    def action(step: int, agent: int, fragment: str, source: str) -> ActionSubmitted:
        return ActionSubmitted(run_id="emb", step=step, agent=f"n{agent}", agent_index=agent, action_index=0,
                               kind=ActionKind.COPY, fragment=fragment, source=source, target=f"n{agent}",
                               step_size=2)

    # step 0 complete; step 1 only half sent; agents out of order on the wire
    first = [action(0, 2, "f0", "n0"), action(0, 1, "f0", "n0")]
    second = [action(1, 3, "f5", "n1")]
    with bus.producer() as p:
        for a in first + second:
            p.produce(topic, a.to_bytes(), key=a.key)
        p.flush()
    try:
        assert service.process_once() == 1
        tp = TopicPartition(topic, 0)

        def committed_when_durable(expected: int) -> int | None:
            """Verdicts are committed once older than the registry Redis's fsync horizon (2 s)."""
            deadline = time.monotonic() + 10
            while service.consumer.consumer.committed([tp])[tp] != expected and time.monotonic() < deadline:
                service.process_once()
            return service.consumer.consumer.committed([tp])[tp]

        assert service.consumer.consumer.committed([tp])[tp] in (None, 0)  # step 0 is too recent to commit
        assert committed_when_durable(2) == 2  # and never past step 1's first action
        late = action(1, 0, "f5", "n1")
        with bus.producer() as p:
            p.produce(topic, late.to_bytes(), key=late.key)
            p.flush()
        deadline = time.monotonic() + 10
        while service.steps_applied < 2 and time.monotonic() < deadline:
            service.process_once()
        assert service.steps_applied == 2
        assert committed_when_durable(4) == 4
    finally:
        service.close()
    results = [e for e in read_topic(bus, settings.topic("action-results"), 4, timeout_s=10)]
    assert [(r.step, r.agent_index, r.accepted) for r in results] == [(0, 1, True), (0, 2, True), (1, 0, True), (1, 3, True)]
    assert registry.replicas("f0") == ["n0", "n1", "n2"] and registry.replicas("f5") == ["n0", "n1", "n3"]
    bus.close()
