"""The indexer against real Kafka and Elasticsearch: live, idempotent, resilient, shared by a group."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from mdde_stream.bus import TopicPartition
from mdde_stream.config import get_settings
from mdde_stream.events import DeadLetter, StepCompleted, Telemetry, decode_event
from mdde_stream.stack.base import StackLayout
from mdde_stream.stack.elasticsearch_node import ElasticsearchNode
from mdde_stream.stack.manager import layout_of
from mdde_stream.telemetry.documents import KINDS, documents_for
from mdde_stream.telemetry.indexer import connect, indexed_topics
from mdde_stream.telemetry.sample import publish, sample_run
from mdde_stream.telemetry.templates import apply_retention, day_index, ensure_day_indices, ensure_templates
from tests.integration.telemetry_fixtures import (
    RunningIndexer,
    TelemetryEnv,
    expected_documents,
    telemetry_env,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path, unique: str) -> Iterator[TelemetryEnv]:
    yield from telemetry_env(tmp_path, unique)


def committed_total(env: TelemetryEnv, group: str) -> int:
    consumer = env.bus.consumer(group)
    try:
        tps = [TopicPartition(t, p) for t in indexed_topics(env.settings)
               for p in range(env.bus.list_topics().get(t, 0))]
        return sum(off or 0 for off in consumer.committed(tps).values())
    finally:
        consumer.close()


def test_documents_appear_within_two_seconds(env: TelemetryEnv) -> None:
    publish([], env.bus, env.settings)
    with RunningIndexer(env) as indexer, env.bus.producer() as producer:
        wait_for(lambda: bool(indexer.consumer.consumer.assignment()), 30, "the indexer to get partitions")
        latencies = []
        for step in range(5):
            event = StepCompleted(run_id="live", step=step, rewards={"a0": 1.0}, storage={"n0": 1})
            t0 = time.monotonic()
            producer.produce(env.settings.topic("steps"), event.to_bytes(), key=event.key)
            producer.flush()
            query = {"term": {"event_id": event.event_id}}
            wait_for(lambda query=query: env.count(query=query) == 3, 10, f"step {step} to be searchable", interval_s=0.05)
            latencies.append(time.monotonic() - t0)
    print(f"produce -> searchable latency: max {max(latencies):.2f} s, all {[round(x, 2) for x in latencies]}")
    assert max(latencies) < 2.0, latencies


def test_replay_does_not_duplicate_and_rejects_go_to_dead_letters(env: TelemetryEnv) -> None:
    events = sample_run("replay", episodes=2, steps=5, seed=3)
    old = datetime(2020, 1, 1, tzinfo=UTC)
    rejected = Telemetry(run_id="replay", ts=old, source="learner", metrics={"loss": 0.5})
    ensure_templates(env.es, env.prefix)
    # A conflicting mapping on that day's index makes Elasticsearch refuse the document for real.
    env.es.indices.create(index=f"{env.prefix}-telemetry-2020.01.01",
                          mappings={"properties": {"value": {"type": "boolean"}}})
    publish([*events, rejected], env.bus, env.settings)
    with env.bus.producer() as producer:
        producer.produce(env.settings.topic("steps"), b"{not json", key="replay")
    expected = expected_documents(events)

    with RunningIndexer(env, group_id=f"g-{uuid.uuid4().hex[:8]}") as indexer:
        wait_for(lambda: env.count() >= expected, 60, f"{expected} documents")
        wait_for(lambda: indexer.consumer.dead_lettered >= 2, 30, "two dead letters")
    assert env.count() == expected
    # Replay the topics from the start with a new group: every document is overwritten, none added.
    with RunningIndexer(env, group_id=f"g-{uuid.uuid4().hex[:8]}") as again:
        wait_for(lambda: again.stats.events >= len(events), 60, "the replay to be consumed")
    assert env.count() == expected

    dlq = env.bus.consumer(f"dlq-{uuid.uuid4().hex[:8]}")
    dlq.subscribe([env.settings.topic(DeadLetter.TOPIC)])
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + 30
    while len(letters) < 4 and time.monotonic() < deadline:  # two per indexer run
        letters += [decode_event(r.value, (DeadLetter,)) for r in dlq.poll(1.0)]  # type: ignore[misc]
    dlq.close()
    types = sorted(letter.error_type for letter in letters)
    assert types == ["elasticsearch-rejected"] * 2 + ["invalid-json"] * 2, types
    es_letter = next(letter for letter in letters if letter.error_type == "elasticsearch-rejected")
    assert "document_parsing_exception" in es_letter.reason  # mapper_parsing_exception before 8.x
    assert decode_event(base64.b64decode(es_letter.payload_b64)).event_id == rejected.event_id


def test_retention_deletes_only_old_dated_indices(env: TelemetryEnv) -> None:
    ensure_templates(env.es, env.prefix)
    today = date(2024, 6, 10)
    for day in ("2024.05.01", "2024.06.02", "2024.06.09"):
        env.es.indices.create(index=f"{env.prefix}-steps-{day}")
    env.es.indices.create(index=f"{env.prefix}-unrelated")
    deleted = apply_retention(env.es, env.prefix, days=7, today=today)
    assert deleted == [f"{env.prefix}-steps-2024.05.01", f"{env.prefix}-steps-2024.06.02"]
    left = set(env.es.indices.get(index=f"{env.prefix}-*"))
    assert left == {f"{env.prefix}-steps-2024.06.09", f"{env.prefix}-unrelated"}


def test_day_indices_exist_before_their_first_event(env: TelemetryEnv) -> None:
    ensure_templates(env.es, env.prefix)
    now = datetime(2030, 12, 31, 23, 30, tzinfo=UTC)
    created = ensure_day_indices(env.es, env.prefix, now=now)
    days = (date(2030, 12, 31), date(2031, 1, 1))
    assert sorted(created) == sorted(day_index(env.prefix, kind, day) for kind in KINDS for day in days)
    assert ensure_day_indices(env.es, env.prefix, now=now) == [], "existing indices are created again"
    mapping = env.es.indices.get_mapping(index=day_index(env.prefix, "steps", days[1]))
    assert next(iter(mapping.values()))["mappings"]["dynamic"] == "strict", "the template was not applied"
    event = StepCompleted(run_id="day", step=0, rewards={"a0": 1.0}, ts=now)
    [doc] = [d for d in documents_for(event) if d.kind == "steps"]
    assert doc.index_name(env.prefix) == day_index(env.prefix, "steps", days[0])


def test_two_indexer_processes_share_partitions(env: TelemetryEnv) -> None:
    publish([], env.bus, env.settings)
    group = f"g-{uuid.uuid4().hex[:8]}"
    child_env = {**os.environ, "MDDE_BUS": env.settings.bus, "MDDE_TOPIC_PREFIX": env.settings.topic_prefix,
                 "MDDE_ELASTICSEARCH": env.es_url, "MDDE_SESSION_TIMEOUT_S": "6"}
    procs = [subprocess.Popen([sys.executable, "-m", "mdde_stream", "service", "indexer", "--group", group], cwd=REPO,
                              env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(2)]
    admin = AdminClient({"bootstrap.servers": env.settings.bus.removeprefix("kafka://")})
    try:
        def members() -> list[int]:
            desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
            return [len(m.assignment.topic_partitions) for m in desc.members]

        wait_for(lambda: len(members()) == 2 and all(members()), 60, "two members with partitions", 0.5)
        assert sum(members()) == len(indexed_topics(env.settings)) * env.settings.partitions
        events = [e for i in range(8) for e in sample_run(f"run-{i}", episodes=1, steps=3, seed=i)]
        publish(events, env.bus, env.settings)
        expected = expected_documents(events)
        wait_for(lambda: env.count() >= expected, 90, f"{expected} documents")
        time.sleep(1.0)
        assert env.count() == expected
        runs = env.es.search(index=f"{env.prefix}-steps-*", size=0, aggs={"r": {"terms": {"field": "run_id"}}})
        assert len(runs["aggregations"]["r"]["buckets"]) == 8
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert all(p.returncode == 0 for p in procs), [p.stderr.read()[-2000:] for p in procs if p.stderr]


# -- Elasticsearch outage, on a private node (the shared one serves everyone else) -------------------
class _PrivateLayout(StackLayout):
    """A layout of its own (data, pid, logs) that reuses the shared stack's downloaded jars."""

    def __init__(self, root: Path, shared_cache: Path) -> None:
        super().__init__(root)
        object.__setattr__(self, "_shared_cache", shared_cache)

    @property
    def cache(self) -> Path:
        return self._shared_cache  # type: ignore[attr-defined]


def _free_port() -> int:
    for port in range(9250, 9300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0 and s.connect_ex(("127.0.0.1", port + 100)) != 0:
                return port
    pytest.fail("no free port pair for a private Elasticsearch node in 9250-9299")


@pytest.fixture
def private_es(tmp_path: Path) -> Iterator[ElasticsearchNode]:
    shared = layout_of(get_settings())
    if not (shared.cache / "elasticsearch" / "lib").is_dir():
        pytest.fail(f"no Elasticsearch jars in {shared.cache}; run `mdde-stream stack up` once first", pytrace=False)
    node = ElasticsearchNode(_PrivateLayout(tmp_path / "es-stack", shared.cache), _free_port())
    node.prepare()
    node.launch()
    node.wait_healthy()
    try:
        yield node
    finally:
        node.stop()


def test_elasticsearch_killed_mid_run_loses_and_duplicates_nothing(
    tmp_path: Path, unique: str, private_es: ElasticsearchNode
) -> None:
    gen = telemetry_env(tmp_path, unique, es_url=private_es.url)
    env = next(gen)
    try:
        before = sample_run("outage", episodes=1, steps=4, seed=1)
        during = sample_run("outage", episodes=3, steps=8, seed=2)[len(before):]
        # Fresh ids for the second part (same run), so nothing collides with the first.
        during = [e.model_copy(update={"event_id": uuid.uuid4().hex, "episode": e.episode + 10}) for e in during]
        group = f"g-{uuid.uuid4().hex[:8]}"
        es = connect(private_es.url, timeout_s=5.0)
        with RunningIndexer(env, es=es, group_id=group, max_records=20, max_backoff_s=1.0) as indexer:
            publish(before, env.bus, env.settings)
            wait_for(lambda: env.count(es) == expected_documents(before), 60, "the first part")

            def trickle() -> None:
                for i in range(0, len(during), 10):
                    publish(during[i:i + 10], env.bus, env.settings)
                    time.sleep(0.1)

            feeder = threading.Thread(target=trickle)
            feeder.start()
            time.sleep(0.3)
            pid = private_es.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)  # mid-run, probably mid-bulk
            feeder.join()
            wait_for(lambda: private_es.pid() is None, 30, "the node to die")
            time.sleep(3.0)
            retries = indexer.stats.retries
            assert retries > 0, "the indexer never noticed the outage"
            held = committed_total(env, group)
            assert held < len(before) + len(during), "offsets were committed for events never indexed"

            private_es.launch()
            private_es.wait_healthy()
            total = expected_documents(before) + expected_documents(during)
            wait_for(lambda: env.count(es) >= total, 120, f"{total} documents after recovery", 0.5)
            wait_for(lambda: committed_total(env, group) == len(before) + len(during), 30, "all offsets committed")
            time.sleep(1.0)
            assert env.count(es) == total
            ids = {e.event_id for e in before + during}
            res = es.search(index=f"{env.prefix}-*", size=0,
                            aggs={"e": {"cardinality": {"field": "event_id", "precision_threshold": 10000}}})
            assert res["aggregations"]["e"]["value"] == len(ids)
        print(f"outage: {retries} retries while down, {held} of {len(before) + len(during)} offsets held back")
    finally:
        try:
            next(gen)
        except StopIteration:
            pass
