"""The estimator service on Kafka: requests in, results out, bad requests to the dead letters."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from pathlib import Path

import pytest

from mdde_stream.bus import TopicPartition, open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.estimator import estimate_mapping
from mdde_stream.events import DeadLetter, EstimateRequested, EstimatorResult, decode_event
from mdde_stream.services.estimator import EstimatorService
from tests.conftest import require_kafka

pytestmark = pytest.mark.integration


def test_estimator_service_answers_requests_and_dead_letters_bad_ones(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    settings = Settings(bus=require_kafka(), topic_prefix=f"test-est-{tag}", session_timeout_s=6, data_dir=tmp_path)
    bus = open_bus(settings=settings)
    ensure_topics(bus, settings)
    service = EstimatorService(bus, settings, group_id=f"est-{tag}")
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    good = EstimateRequested(run_id="r1", step=4, allocation={"n0": ["f0", "f1"], "n1": ["f1", "f2"]},
                             baseline_reads={"n0": {"f0": 50, "f1": 30}, "n1": {"f2": 20}},
                             baseline_throughput=900.0)
    orphan = EstimateRequested(run_id="r1", step=5, allocation={"n0": ["f0"]},
                               baseline_reads={"n0": {"f9": 5}}, baseline_throughput=1.0)
    try:
        with bus.producer() as producer:
            producer.produce(settings.topic(good.TOPIC), good.to_bytes(), key=good.key)
            producer.produce(settings.topic(good.TOPIC), b'{"schema": "estimate-request"', key=b"r1")
            producer.produce(settings.topic(orphan.TOPIC), orphan.to_bytes(), key=orphan.key)
            producer.flush()
        results = _collect(bus, settings.topic(EstimatorResult.TOPIC), 1)
        letters = _collect(bus, settings.topic(DeadLetter.TOPIC), 2)
    finally:
        service.stop()
        thread.join(20)
        bus.delete_topics([t for t in bus.list_topics() if t.startswith(settings.topic_prefix + ".")])
        bus.close()
    result = decode_event(results[0], (EstimatorResult,))
    expected = estimate_mapping({"allocation": good.allocation, "baseline_reads": good.baseline_reads,
                                 "baseline_throughput": 900.0})
    assert result.request_id == good.request_id and result.step == 4  # type: ignore[attr-defined]
    assert result.throughput == pytest.approx(expected["throughput"])  # type: ignore[attr-defined]
    assert result.node_reads == expected["node_reads"]  # type: ignore[attr-defined]
    reasons = {}
    for raw in letters:
        letter = decode_event(raw, (DeadLetter,))
        reasons[base64.b64decode(letter.payload_b64)] = (letter.error_type, letter.reason)  # type: ignore[attr-defined]
    assert reasons[orphan.to_bytes()][0] == "invalid-request" and "f9" in reasons[orphan.to_bytes()][1]
    assert reasons[b'{"schema": "estimate-request"'][0] == "invalid-json"
    assert not thread.is_alive()


def _collect(bus, topic: str, count: int, timeout_s: float = 30.0) -> list[bytes]:  # noqa: ANN001
    # A new group with offset reset "earliest": reads each partition from its start.
    consumer = bus.consumer(f"inspect-{uuid.uuid4().hex[:8]}", offset_reset="earliest")
    partitions = bus.list_topics()[topic]
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        out += [record.value for record in consumer.poll(0.5)]
    consumer.close()
    assert len(out) >= count, f"only {len(out)} of {count} records on {topic} within {timeout_s}s"
    return out
