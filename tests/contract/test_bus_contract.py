"""One contract, two backends: the embedded SQLite log and real Kafka must behave the same."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdde_stream.bus import Bus, Consumer, Record, TopicPartition, TopicSpec, open_bus
from mdde_stream.bus.app import EventConsumer, EventProducer
from mdde_stream.config import Settings
from mdde_stream.events import ActionKind, ActionSubmitted, DeadLetter, Telemetry, decode_event
from tests.conftest import require_kafka

BACKENDS = ["embedded", "kafka"]


@pytest.fixture(params=BACKENDS)
def bus(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[Bus]:
    settings = Settings(data_dir=tmp_path, topic_prefix=f"t{unique}", session_timeout_s=6.0)
    if request.param == "kafka":
        b = open_bus(require_kafka(), settings=settings)
    else:
        b = open_bus("", settings=settings)
    created: list[str] = []
    b.created = created  # type: ignore[attr-defined]
    yield b
    if request.param == "kafka":
        b.delete_topics([t for t in b.list_topics() if t.startswith(settings.topic_prefix)])
    b.close()


def make_topic(bus: Bus, unique: str, partitions: int = 4, name: str = "events") -> str:
    topic = f"t{unique}.{name}"
    bus.create_topics([TopicSpec(topic, partitions)])
    return topic


def drain(consumer: Consumer, want: int, timeout: float = 20.0) -> list[Record]:
    """Poll until ``want`` records arrived or the timeout passed."""
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        out.extend(consumer.poll(0.2))
    return out


def values(records: list[Record]) -> list[str]:
    return [r.value.decode() for r in records]


def test_topics_are_created_explicitly_and_listed(bus: Bus, unique: str) -> None:
    topic = make_topic(bus, unique, partitions=3)
    assert bus.list_topics()[topic] == 3
    bus.create_topics([TopicSpec(topic, 3)])  # idempotent
    assert bus.list_topics()[topic] == 3
    assert bus.watermarks(TopicPartition(topic, 0)) == (0, 0)


def test_order_is_kept_per_key(bus: Bus, unique: str) -> None:
    topic = make_topic(bus, unique)
    with bus.producer() as producer:
        for i in range(300):
            for key in ("run-a", "run-b", "run-c"):
                producer.produce(topic, f"{key}:{i}".encode(), key=key)
        producer.flush()
    consumer = bus.consumer(f"g{unique}")
    consumer.subscribe([topic])
    records = drain(consumer, 900)
    consumer.close()
    assert len(records) == 900
    for key in ("run-a", "run-b", "run-c"):
        mine = [r for r in records if r.key == key.encode()]
        assert [int(v.split(":")[1]) for v in values(mine)] == list(range(300))
        assert len({r.partition for r in mine}) == 1, "one key must stay on one partition"
        offsets = [r.offset for r in mine]
        assert offsets == sorted(offsets)


def test_uncommitted_records_are_redelivered_after_a_consumer_dies(bus: Bus, unique: str) -> None:
    topic = make_topic(bus, unique, partitions=2)
    with bus.producer() as producer:
        for i in range(40):
            producer.produce(topic, str(i).encode(), key=f"k{i % 2}")
    group = f"g{unique}"
    first = bus.consumer(group)
    first.subscribe([topic])
    seen = drain(first, 40)
    assert len(seen) == 40
    committed = [r for r in seen if int(r.value) < 10]  # processed these, then "died"
    first.commit(committed)
    first.close()

    second = bus.consumer(group)
    second.subscribe([topic])
    again = drain(second, 30)
    second.close()
    assert sorted(int(v) for v in values(again)) == list(range(10, 40)), "exactly the uncommitted records return"


def test_two_members_of_one_group_split_the_partitions(bus: Bus, unique: str) -> None:
    topic = make_topic(bus, unique, partitions=4)
    group = f"g{unique}"
    a, b = bus.consumer(group), bus.consumer(group)
    a.subscribe([topic])
    b.subscribe([topic])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        a.poll(0.1)
        b.poll(0.1)
        sa, sb = set(a.assignment()), set(b.assignment())
        if sa and sb and not sa & sb and len(sa | sb) == 4:
            break
    sa, sb = set(a.assignment()), set(b.assignment())
    assert sa and sb and not sa & sb and len(sa | sb) == 4, (sa, sb)

    with bus.producer() as producer:
        for i in range(200):
            producer.produce(topic, str(i).encode(), key=f"key-{i}")
    got_a: list[Record] = []
    got_b: list[Record] = []
    deadline = time.monotonic() + 20
    while len(got_a) + len(got_b) < 200 and time.monotonic() < deadline:
        got_a.extend(a.poll(0.1))
        got_b.extend(b.poll(0.1))
    a.close()
    b.close()
    assert sorted(int(v) for v in values(got_a + got_b)) == list(range(200))
    assert {r.tp for r in got_a} <= sa and {r.tp for r in got_b} <= sb
    assert got_a and got_b, "both members must have done work"


def test_two_groups_each_see_everything(bus: Bus, unique: str) -> None:
    topic = make_topic(bus, unique, partitions=3)
    with bus.producer() as producer:
        for i in range(90):
            producer.produce(topic, str(i).encode(), key=str(i))
    for group in ("alpha", "beta"):
        consumer = bus.consumer(f"{group}{unique}")
        consumer.subscribe([topic])
        got = drain(consumer, 90)
        consumer.commit()
        consumer.close()
        assert sorted(int(v) for v in values(got)) == list(range(90))


def test_seek_replays_from_an_offset_and_a_time(bus: Bus, unique: str) -> None:
    topic = make_topic(bus, unique, partitions=1)
    tp = TopicPartition(topic, 0)
    with bus.producer() as producer:
        for i in range(20):
            producer.produce(topic, str(i).encode(), key="k")
        producer.flush()
        time.sleep(0.05)
        cut_ms = int(time.time() * 1000)
        time.sleep(0.05)
        for i in range(20, 30):
            producer.produce(topic, str(i).encode(), key="k")
    assert bus.watermarks(tp) == (0, 30)

    consumer = bus.consumer(f"g{unique}")
    consumer.assign([tp])
    assert values(drain(consumer, 30)) == [str(i) for i in range(30)]
    consumer.seek(tp, 7)
    assert values(drain(consumer, 23)) == [str(i) for i in range(7, 30)]
    assert consumer.offsets_for_time(topic, cut_ms) == {tp: 20}
    consumer.seek_to_time(topic, cut_ms)
    assert values(drain(consumer, 10)) == [str(i) for i in range(20, 30)]
    consumer.close()


def test_committed_offsets_are_kept_per_group(bus: Bus, unique: str) -> None:
    topic = make_topic(bus, unique, partitions=1)
    tp = TopicPartition(topic, 0)
    with bus.producer() as producer:
        for i in range(5):
            producer.produce(topic, str(i).encode())
    consumer = bus.consumer(f"g{unique}")
    consumer.assign([tp])
    got = drain(consumer, 5)
    consumer.commit(got[:3])
    assert consumer.committed([tp]) == {tp: 3}
    consumer.close()
    other = bus.consumer(f"other{unique}")
    assert other.committed([tp]) == {tp: None}
    other.close()


def test_invalid_events_go_to_the_dead_letter_topic_and_nothing_else_is_lost(bus: Bus, unique: str) -> None:
    settings = Settings(topic_prefix=f"t{unique}")
    actions = settings.topic(ActionSubmitted.TOPIC)
    dead = settings.topic(DeadLetter.TOPIC)
    bus.create_topics([TopicSpec(actions, 2), TopicSpec(dead, 1)])

    def action(i: int) -> ActionSubmitted:
        return ActionSubmitted(run_id="run", step=i, agent="w0", agent_index=0, action_index=i, kind=ActionKind.SKIP)

    good = [action(i) for i in range(6)]
    wrong_version = json.loads(action(99).to_bytes())
    wrong_version["version"] = 7
    missing_field = json.loads(action(98).to_bytes())
    del missing_field["agent"]
    huge_id = json.loads(action(97).to_bytes())
    huge_id["episode"] = 10**30
    bad_payloads = [
        bytes(range(256))[::7] + b"\xff\xfe",  # random bytes
        json.dumps(wrong_version).encode(),
        json.dumps(missing_field).encode(),
        Telemetry(run_id="run", source="x", metrics={}).to_bytes(),  # valid event, wrong topic
        b'{"schema":"action","version":1,"x":' + b"[" * 50_000 + b"]" * 50_000 + b"}",  # 100 KB, 50,000 deep
        b'{"schema":"action","version":1,"pad":"' + b"x" * 950_000 + b'"}',  # 950 KB
        json.dumps(huge_id).encode(),  # an id of 10^30
    ]
    with EventProducer(bus, settings) as producer:
        for i, event in enumerate(good):
            producer.send(event)
            producer.raw.produce(actions, bad_payloads[i], key="run")
        for payload in bad_payloads[len(good):]:
            producer.raw.produce(actions, payload, key="../../not a run id")
        producer.flush()
    assert len(bad_payloads) > len(good)

    consumer = EventConsumer(bus, f"g{unique}", [actions], (ActionSubmitted,), settings=settings)
    received: list[ActionSubmitted] = []
    deadline = time.monotonic() + 20
    while (len(received) < len(good) or consumer.dead_lettered < len(bad_payloads)) and time.monotonic() < deadline:
        received.extend(d.event for d in consumer.poll(0.2))
        consumer.commit()
    consumer.close()
    assert sorted(e.step for e in received) == list(range(6)), "every valid event arrives"

    reader = bus.consumer(f"dlq{unique}")
    reader.subscribe([dead])
    letters = [decode_event(r.value) for r in drain(reader, len(bad_payloads))]
    reader.close()
    assert len(letters) == len(bad_payloads)
    large = {letter.payload_size: letter for letter in letters if letter.payload_truncated}  # type: ignore[attr-defined]
    assert set(large) == {len(p) for p in bad_payloads if len(p) > 64 * 1024}
    for payload in (p for p in bad_payloads if len(p) > 64 * 1024):
        assert large[len(payload)].payload_sha256 == hashlib.sha256(payload).hexdigest()  # type: ignore[attr-defined]
        assert len(large[len(payload)].to_bytes()) < 200_000, "a dead letter stays far below the broker's 1 MB limit"
    bad_payloads = [p[: 64 * 1024] for p in bad_payloads]  # what a letter keeps of each
    by_payload = {base64.b64decode(letter.payload_b64): letter for letter in letters}  # type: ignore[attr-defined]
    assert set(by_payload) == set(bad_payloads), "raw payloads are kept byte for byte (the first 64 KiB of large ones)"
    reasons = {p: by_payload[p].error_type for p in bad_payloads}  # type: ignore[attr-defined]
    assert reasons[bad_payloads[0]] == "invalid-json"
    assert reasons[bad_payloads[1]] == "unsupported-version"
    assert reasons[bad_payloads[2]] == "validation-error"
    assert "agent" in by_payload[bad_payloads[2]].reason  # type: ignore[attr-defined]
    assert reasons[bad_payloads[3]] == "unexpected-schema"
    assert reasons[bad_payloads[4]] == "too-deep"
    assert reasons[bad_payloads[5]] == "too-large"
    assert reasons[bad_payloads[6]] == "validation-error" and "episode" in by_payload[bad_payloads[6]].reason  # type: ignore[attr-defined]
    assert {letter.run_id for letter in letters} == {"run", "unknown"}  # an unsafe key is not a run id
    assert all(letter.source_topic == actions for letter in letters)  # type: ignore[attr-defined]


def test_embedded_log_survives_the_process(tmp_path: Path, unique: str) -> None:
    """A recorded run can be read back after the writer is gone (the embedded bus is a file)."""
    settings = Settings(data_dir=tmp_path)
    first = open_bus("", settings=settings)
    topic = make_topic(first, unique, partitions=2)
    with first.producer() as producer:
        for i in range(50):
            producer.produce(topic, str(i).encode(), key=str(i % 5))
    consumer = first.consumer("g")
    consumer.subscribe([topic])
    assert len(drain(consumer, 50)) == 50
    consumer.commit()
    consumer.close()
    first.close()

    again = open_bus("", settings=settings)
    reader = again.consumer("fresh")
    reader.subscribe([topic])
    assert sorted(int(v) for v in values(drain(reader, 50))) == list(range(50))
    reader.close()
    resumed = again.consumer("g")
    resumed.subscribe([topic])
    assert resumed.poll(0.3) == [], "the committed group resumes after everything it read"
    resumed.close()
    again.close()


_DYING_CONSUMER = """
import sys, time
from mdde_stream.bus import open_bus
from mdde_stream.config import Settings
bus = open_bus(sys.argv[1], settings=Settings(data_dir=sys.argv[2], session_timeout_s=6.0))
consumer = bus.consumer(sys.argv[3])
consumer.subscribe([sys.argv[4]])
seen = 0
while seen < int(sys.argv[5]):
    seen += len(consumer.poll(0.2))
print(seen, flush=True)
time.sleep(600)  # killed here, holding its partitions, never committing
"""


def test_a_killed_consumer_loses_nothing(bus: Bus, unique: str, tmp_path: Path) -> None:
    """A member killed with SIGKILL after reading (and before committing) leaves everything to its group."""
    import signal
    import subprocess
    import sys

    topic = make_topic(bus, unique, partitions=2)
    with bus.producer() as producer:
        for i in range(60):
            producer.produce(topic, str(i).encode(), key=str(i))
    url = bus.url if bus.url.startswith("kafka://") else ""
    group = f"g{unique}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _DYING_CONSUMER, url, str(tmp_path), group, topic, "60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "60", "the doomed consumer read everything first"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    survivor = bus.consumer(group)
    survivor.subscribe([topic])
    got = drain(survivor, 60, timeout=40)
    survivor.close()
    assert sorted(int(v) for v in values(got)) == list(range(60))


def test_commit_below_keeps_open_work_for_the_next_member(bus: Bus, unique: str) -> None:
    """Everything polled is committed except from the first pending record of a partition on."""
    topic = make_topic(bus, unique, partitions=2)
    with bus.producer() as producer:
        for i in range(10):
            producer.produce(topic, f"v{i}".encode(), partition=i % 2)
        producer.flush()
    first = bus.consumer(f"g{unique}")
    first.subscribe([topic])
    records = drain(first, 10)
    assert len(records) == 10
    pending = [r for r in records if r.partition == 0 and r.value in (b"v4", b"v8")]
    floor = {pending[0].tp: min(r.offset for r in pending)}
    first.commit_below(floor)
    committed = first.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    assert committed[TopicPartition(topic, 0)] == floor[pending[0].tp]  # v4 and what follows come back
    assert committed[TopicPartition(topic, 1)] == 5  # the other partition is done
    first.close()
    second = bus.consumer(f"g{unique}")
    second.subscribe([topic])
    again = drain(second, 3)
    second.close()
    assert sorted(values(again)) == ["v4", "v6", "v8"]


def test_group_members_counts_live_members_of_a_group(bus: Bus, unique: str) -> None:
    """Commands wait on a service group through the contract, on either bus."""
    topic = make_topic(bus, unique, partitions=4)
    group = f"g{unique}"
    assert bus.group_members(group) == 0
    members = [bus.consumer(group) for _ in range(2)]
    for consumer in members:
        consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while bus.group_members(group) < 2 and time.monotonic() < deadline:
        for consumer in members:
            consumer.poll(0.1)
    assert bus.group_members(group) == 2
    members[0].close()
    deadline = time.monotonic() + 30
    while bus.group_members(group) != 1 and time.monotonic() < deadline:
        members[1].poll(0.1)
    assert bus.group_members(group) == 1
    members[1].close()
