"""Bus throughput: produce + consume of small events, each backend against raw confluent-kafka.

The references are measured in the same run on the same broker: a bare ``confluent_kafka.Producer``
and ``Consumer`` with librdkafka's defaults plus the same linger, and the same bare producer with
the delivery guarantees the project uses (idempotence, ``acks=all``). The first ratio shows the whole
cost of the project's producer, the second what the Python layer adds on top of librdkafka.

    python bench/bench_bus.py [--events 200000] [--kafka kafka://127.0.0.1:9092] [--skip-kafka]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from mdde_stream.bus import TopicPartition, TopicSpec, open_bus
from mdde_stream.config import Settings

PAYLOAD = b'{"schema":"telemetry","version":1,"run_id":"bench","metrics":{"x":1.0}}'  # ~70 bytes


def measure_backend(url: str, events: int, partitions: int = 4, idempotence: bool = True) -> tuple[float, float]:
    """(produced events/s, consumed events/s) through the project's bus interface."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), kafka_idempotence=idempotence)
        bus = open_bus(url, settings=settings)
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        bus.create_topics([TopicSpec(topic, partitions)])
        try:
            producer = bus.producer()
            start = time.perf_counter()
            for i in range(events):
                producer.produce(topic, PAYLOAD, key=str(i % 64))
            producer.flush()
            produce_rate = events / (time.perf_counter() - start)
            producer.close()

            consumer = bus.consumer(f"bench-{uuid.uuid4().hex[:8]}")
            consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
            got = 0
            start = time.perf_counter()
            while got < events:
                got += len(consumer.poll(1.0, max_records=5000))
            consume_rate = events / (time.perf_counter() - start)
            consumer.close()
        finally:
            if url.startswith("kafka://"):
                bus.delete_topics([topic])
            bus.close()
    return produce_rate, consume_rate


def measure_raw_kafka(
    bootstrap: str, events: int, partitions: int = 4, extra: dict | None = None
) -> tuple[float, float]:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition as RawTP
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    time.sleep(1.0)
    try:
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **(extra or {})})
        start = time.perf_counter()
        for i in range(events):
            while True:
                try:
                    producer.produce(topic, PAYLOAD, str(i % 64).encode())
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        producer.flush(60)
        produce_rate = events / (time.perf_counter() - start)

        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
        )
        consumer.assign([RawTP(topic, p, 0) for p in range(partitions)])
        got = 0
        start = time.perf_counter()
        while got < events:
            got += sum(1 for m in consumer.consume(5000, 1.0) if m.error() is None)
        consume_rate = events / (time.perf_counter() - start)
        consumer.close()
    finally:
        admin.delete_topics([topic])
    return produce_rate, consume_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--kafka", default="kafka://127.0.0.1:9092")
    parser.add_argument("--skip-kafka", action="store_true")
    args = parser.parse_args()

    rows: list[tuple[str, float, float, str]] = []
    emb = measure_backend("", args.events)
    rows.append(("embedded (SQLite)", *emb, f"goal >= 20,000/s: {'met' if min(emb) >= 20_000 else 'MISSED'}"))
    if not args.skip_kafka:
        bootstrap = args.kafka.removeprefix("kafka://")
        raw = measure_raw_kafka(bootstrap, args.events)
        same = measure_raw_kafka(bootstrap, args.events, extra={"enable.idempotence": True, "acks": "all"})
        ours = measure_backend(args.kafka, args.events)
        rows.append(("raw confluent-kafka, defaults", *raw, "1.00x (reference)"))
        rows.append(("raw confluent-kafka, idempotent", *same, f"produce {same[0] / raw[0]:.2f}x of defaults"))
        rows.append(
            (
                "kafka backend (idempotent)",
                *ours,
                f"produce {ours[0] / raw[0]:.2f}x of defaults, {ours[0] / same[0]:.2f}x of idempotent raw; "
                f"consume {ours[1] / raw[1]:.2f}x (goal >= 0.50x produce)",
            )
        )
        fast = measure_backend(args.kafka, args.events, idempotence=False)
        rows.append(
            (
                "kafka backend (MDDE_KAFKA_IDEMPOTENCE=false)",
                *fast,
                f"produce {fast[0] / raw[0]:.2f}x of defaults; consume {fast[1] / raw[1]:.2f}x",
            )
        )
    print(f"{'backend':44} {'produce ev/s':>14} {'consume ev/s':>14}  ratio / goal")
    for name, prod, cons, note in rows:
        print(f"{name:44} {prod:14,.0f} {cons:14,.0f}  {note}")


if __name__ == "__main__":
    main()
