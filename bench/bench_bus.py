"""Bus throughput: produce + consume of small events, each backend against raw confluent-kafka.

The references are measured in the same run on the same broker: a bare ``confluent_kafka.Producer``
and ``Consumer`` with librdkafka's defaults plus the same linger, and the same bare producer with
the delivery guarantees the project uses (idempotence, ``acks=all``).

Start-up and steady state are reported apart, the same way for every client. An idempotent
librdkafka producer holds its first batch for about half a second while it obtains a producer id
from the broker; on a run of a few hundred thousand events that one-off wait would otherwise read
as a throughput loss of 2-3x. So each producer first delivers one event (its "first delivery" time),
and each consumer's rate counts from its first record (its "first record" time).

    python bench/bench_bus.py [--events 1000000] [--kafka kafka://127.0.0.1:9092] [--skip-kafka]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mdde_stream.bus import TopicPartition, TopicSpec, open_bus
from mdde_stream.config import Settings

PAYLOAD = b'{"schema":"telemetry","version":1,"run_id":"bench","metrics":{"x":1.0}}'  # ~70 bytes
KEYS = [str(i).encode() for i in range(64)]


@dataclass(frozen=True)
class BusFigures:
    produce_rate: float
    """Events/s from the first event after the warm-up delivery to the end of the final flush."""
    consume_rate: float
    """Events/s from the first record received to the last."""
    first_delivery_s: float
    """Producer start-up: creating it and delivering one event."""
    first_record_s: float
    """Consumer start-up: creating it until its first record arrives."""


def _consume_rate(poll: Callable[[], int], events: int, created: float) -> tuple[float, float]:
    """(events/s after the first record, seconds from creation to the first record)."""
    got = 0
    while got == 0:
        got = poll()
    first = time.perf_counter()
    first_record_s = first - created
    counted = got
    while got < events:
        got += poll()
    elapsed = time.perf_counter() - first
    return (got - counted) / elapsed if elapsed > 0 else float("inf"), first_record_s


def measure_backend(url: str, events: int, partitions: int = 4, idempotence: bool = True) -> BusFigures:
    """Figures through the project's bus interface."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), kafka_idempotence=idempotence)
        bus = open_bus(url, settings=settings)
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        bus.create_topics([TopicSpec(topic, partitions)])
        try:
            created = time.perf_counter()
            producer = bus.producer()
            producer.produce(topic, PAYLOAD, key="warm-up")
            producer.flush()
            first_delivery_s = time.perf_counter() - created
            keys = [k.decode() for k in KEYS]
            start = time.perf_counter()
            for i in range(events):
                producer.produce(topic, PAYLOAD, key=keys[i % 64])
            producer.flush()
            produce_rate = events / (time.perf_counter() - start)
            producer.close()

            created = time.perf_counter()
            consumer = bus.consumer(f"bench-{uuid.uuid4().hex[:8]}")
            consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
            consume_rate, first_record_s = _consume_rate(
                lambda: len(consumer.poll(1.0, max_records=5000)), events + 1, created
            )
            consumer.close()
        finally:
            if url.startswith("kafka://"):
                bus.delete_topics([topic])
            bus.close()
    return BusFigures(produce_rate, consume_rate, first_delivery_s, first_record_s)


def measure_raw_kafka(bootstrap: str, events: int, partitions: int = 4, extra: dict | None = None) -> BusFigures:
    """Figures of the bare confluent-kafka client, measured exactly like :func:`measure_backend`."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition as RawTP
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    time.sleep(1.0)
    try:
        created = time.perf_counter()
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **(extra or {})})
        producer.produce(topic, PAYLOAD, b"warm-up")
        producer.flush(60)
        first_delivery_s = time.perf_counter() - created
        start = time.perf_counter()
        for i in range(events):
            while True:
                try:
                    producer.produce(topic, PAYLOAD, KEYS[i % 64])
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        producer.flush(60)
        produce_rate = events / (time.perf_counter() - start)

        created = time.perf_counter()
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
        )
        consumer.assign([RawTP(topic, p, 0) for p in range(partitions)])
        consume_rate, first_record_s = _consume_rate(
            lambda: sum(1 for m in consumer.consume(5000, 1.0) if m.error() is None), events + 1, created
        )
        consumer.close()
    finally:
        admin.delete_topics([topic])
    return BusFigures(produce_rate, consume_rate, first_delivery_s, first_record_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--kafka", default="kafka://127.0.0.1:9092")
    parser.add_argument("--skip-kafka", action="store_true")
    args = parser.parse_args()

    rows: list[tuple[str, BusFigures, str]] = []
    emb = measure_backend("", args.events)
    met = min(emb.produce_rate, emb.consume_rate) >= 20_000
    rows.append(("embedded (SQLite)", emb, f"goal >= 20,000/s: {'met' if met else 'MISSED'}"))
    if not args.skip_kafka:
        bootstrap = args.kafka.removeprefix("kafka://")
        raw = measure_raw_kafka(bootstrap, args.events)
        same = measure_raw_kafka(bootstrap, args.events, extra={"enable.idempotence": True, "acks": "all"})
        ours = measure_backend(args.kafka, args.events)
        fast = measure_backend(args.kafka, args.events, idempotence=False)
        rows.append(("raw confluent-kafka, defaults", raw, "1.00x (reference)"))
        rows.append(("raw confluent-kafka, idempotent", same, f"produce {same.produce_rate / raw.produce_rate:.2f}x"))
        verdict = "met" if ours.produce_rate >= 0.5 * raw.produce_rate else "MISSED"
        rows.append((
            "kafka backend (idempotent, the default)",
            ours,
            f"produce {ours.produce_rate / raw.produce_rate:.2f}x (goal >= 0.50x: {verdict}), "
            f"{ours.produce_rate / same.produce_rate:.2f}x of idempotent raw; "
            f"consume {ours.consume_rate / raw.consume_rate:.2f}x",
        ))
        rows.append((
            "kafka backend, MDDE_KAFKA_IDEMPOTENCE=false",
            fast,
            f"produce {fast.produce_rate / raw.produce_rate:.2f}x; consume {fast.consume_rate / raw.consume_rate:.2f}x",
        ))
    print(f"{'client':42} {'produce ev/s':>13} {'consume ev/s':>13} {'1st delivery':>13} {'1st record':>11}  ratio")
    for name, f, note in rows:
        print(
            f"{name:42} {f.produce_rate:13,.0f} {f.consume_rate:13,.0f} "
            f"{f.first_delivery_s * 1000:10.0f} ms {f.first_record_s * 1000:8.0f} ms  {note}"
        )


if __name__ == "__main__":
    main()
