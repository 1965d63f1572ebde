"""Replay contract: record episodes on a bus, read them back, verify, and report what is missing.

Parametrised over the embedded bus and real Kafka (the local stack; a Kafka that is not reachable
fails the test, it is never skipped). Every Kafka test uses its own uuid topic prefix.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mdde_stream.bus import Bus, TopicPartition, open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.events import ActionResult, StepCompleted
from mdde_stream.replay import (
    CorruptEventError,
    EpisodeRecording,
    IncompleteRecordingError,
    RecordedEvent,
    Selection,
    read_episodes,
    read_selection,
)
from mdde_stream.replay.reemit import reemit
from mdde_stream.replay.testing import record_episodes
from mdde_stream.replay.verify import verify_episode
from tests.conftest import require_kafka

BACKENDS = ["embedded", "kafka"]
STEPS = 20


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[tuple[Bus, Settings]]:
    url = require_kafka() if request.param == "kafka" else ""
    settings = Settings(data_dir=tmp_path, bus=url, state="", data_nodes="", elasticsearch="",
                        topic_prefix=f"r{unique}", partitions=2, session_timeout_s=6.0)
    bus = open_bus(settings=settings)
    ensure_topics(bus, settings)
    yield bus, settings
    if request.param == "kafka":
        bus.delete_topics([t for t in bus.list_topics() if t.startswith(f"r{unique}")])
    bus.close()


def _copy(bus: Bus, settings: Settings, events: list[RecordedEvent], prefix: str) -> Settings:
    """Produce ``events`` (already altered as wanted) into a fresh topic prefix: a copy of the recording."""
    copy = settings.model_copy(update={"topic_prefix": prefix})
    ensure_topics(bus, copy)
    with bus.producer() as producer:
        for rec in events:
            short = rec.record.topic[len(settings.topic_prefix) + 1:]
            producer.produce(copy.topic(short), rec.event.to_bytes(), key=rec.event.key)
        producer.flush()
    return copy


def _one(bus: Bus, settings: Settings, run_id: str, episode: int = 0) -> EpisodeRecording:
    [ep] = read_episodes(bus, Selection(run_id=run_id, episode=episode), settings)
    return ep


def test_record_then_verify_20_random_valid_episodes(backend: tuple[Bus, Settings]) -> None:
    bus, settings = backend
    summary = record_episodes(settings, episodes=20, steps=STEPS, seed=11)
    episodes = read_episodes(bus, Selection(run_id=summary.run_id), settings)
    assert [e.episode for e in episodes] == list(range(20))
    for ep in episodes:
        assert ep.complete, ep.problems
        assert ep.last_step == STEPS
        report = verify_episode(ep, settings)
        assert report.ok, str(report)
        assert report.steps == STEPS
        assert report.checks > STEPS * 4 * 4  # verdicts and rewards of every agent, every step


def test_simulated_benchmark_episode_verifies_bit_for_bit(backend: tuple[Bus, Settings]) -> None:
    bus, settings = backend
    summary = record_episodes(settings, episodes=1, steps=10, seed=3, benchmark="simulated", operations=5_000)
    report = verify_episode(_one(bus, settings, summary.run_id), settings)
    assert report.ok, str(report)


def test_flipped_action_result_is_caught_at_its_step(backend: tuple[Bus, Settings], unique: str) -> None:
    bus, settings = backend
    run_id = record_episodes(settings, episodes=1, steps=STEPS, seed=5).run_id
    ep = _one(bus, settings, run_id)
    target = next(r for r in ep.events
                  if isinstance(r.event, ActionResult) and r.event.step == 7 and r.event.agent_index == 2)
    flipped = target.event.model_copy(update={"accepted": not target.event.accepted,
                                              "code": None if not target.event.accepted else 2601})
    altered = [RecordedEvent(r.record, flipped) if r is target else r for r in ep.events]
    copy = _copy(bus, settings, altered, f"c{unique}")
    report = verify_episode(_one(bus, copy, run_id), copy)
    assert not report.ok
    d = report.divergence
    assert d is not None
    assert (d.step, d.agent, d.what) == (7, target.event.agent, "action result accepted")
    assert (d.expected, d.got) == (not target.event.accepted, target.event.accepted)
    assert d.where.startswith(copy.topic("action-results"))
    assert report.steps == 6  # steps 1-6 matched


def test_altered_reward_is_caught_at_its_step(backend: tuple[Bus, Settings], unique: str) -> None:
    bus, settings = backend
    run_id = record_episodes(settings, episodes=1, steps=STEPS, seed=9).run_id
    ep = _one(bus, settings, run_id)
    target = next(r for r in ep.events if isinstance(r.event, StepCompleted) and r.event.step == 13)
    agent = sorted(target.event.rewards)[1]
    rewards = {**target.event.rewards, agent: target.event.rewards[agent] + 1e-9}
    altered = [RecordedEvent(r.record, target.event.model_copy(update={"rewards": rewards})) if r is target else r
               for r in ep.events]
    copy = _copy(bus, settings, altered, f"c{unique}")
    report = verify_episode(_one(bus, copy, run_id), copy)
    d = report.divergence
    assert d is not None and (d.step, d.agent, d.what) == (13, agent, "reward")
    assert d.expected == rewards[agent] and d.got == target.event.rewards[agent]


def test_select_by_time_range_and_by_offsets(backend: tuple[Bus, Settings]) -> None:
    bus, settings = backend
    first = record_episodes(settings, episodes=1, steps=5, seed=1).run_id
    time.sleep(1.1)  # record timestamps have millisecond resolution; keep the runs well apart
    since = datetime.now(UTC)
    time.sleep(0.05)
    second = record_episodes(settings, episodes=1, steps=5, seed=2).run_id
    by_time = read_episodes(bus, Selection(since=since), settings)
    assert {e.run_id for e in by_time} == {second}
    assert verify_episode(by_time[0], settings).ok

    # The second run's StepCompleted records, addressed purely by partition and offsets.
    steps = [r for r in read_selection(bus, Selection(run_id=second), settings).events
             if isinstance(r.event, StepCompleted)]
    partition = steps[0].record.partition
    lo, hi = steps[1].record.offset, steps[3].record.offset + 1
    raw = read_selection(bus, Selection(from_offset=lo, to_offset=hi, topics=("steps",), partition=partition),
                         settings)
    assert [(r.event.run_id, r.event.step) for r in raw.events] == [(second, 2), (second, 3), (second, 4)]
    assert first != second


def test_replay_never_moves_live_consumers_offsets(backend: tuple[Bus, Settings], unique: str) -> None:
    bus, settings = backend
    run_id = record_episodes(settings, episodes=1, steps=5, seed=4).run_id
    topic = settings.topic("steps")
    tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
    live = bus.consumer(f"live-{unique}")
    live.assign(tps)
    got = []
    deadline = time.monotonic() + 20
    while len(got) < 2 and time.monotonic() < deadline:
        got.extend(live.poll(0.2))
    live.commit(got[:2])
    before = live.committed(tps)
    assert any(v is not None for v in before.values())
    assert verify_episode(_one(bus, settings, run_id), settings).ok
    assert live.committed(tps) == before
    live.close()


def test_expired_retention_is_reported(backend: tuple[Bus, Settings]) -> None:
    bus, settings = backend
    run_id = record_episodes(settings, episodes=1, steps=5, seed=6).run_id
    topic = settings.topic("episodes")
    for p in range(settings.partitions):
        tp = TopicPartition(topic, p)
        _, high = bus.watermarks(tp)
        _delete_records_before(bus, tp, high)
    ep = _one(bus, settings, run_id)
    assert not ep.complete
    text = " ".join(ep.problems)
    assert "no EpisodeStarted" in text and "retention" in text and "starts at offset" in text
    with pytest.raises(IncompleteRecordingError, match="EpisodeStarted"):
        verify_episode(ep, settings)


def test_deleted_topic_and_cut_off_episode_are_reported(backend: tuple[Bus, Settings], unique: str) -> None:
    bus, settings = backend
    run_id = record_episodes(settings, episodes=1, steps=STEPS, seed=8).run_id
    ep = _one(bus, settings, run_id)
    cut = [r for r in ep.events if r.event.step <= 15]
    copy = _copy(bus, settings, cut, f"c{unique}")
    cut_ep = _one(bus, copy, run_id)
    assert any("cut off" in p and "step is 15 of 20" in p for p in cut_ep.problems), cut_ep.problems

    bus.delete_topics([settings.topic("action-results")])
    _wait_gone(bus, settings.topic("action-results"))
    gone = _one(bus, settings, run_id)
    assert any("'action-results' does not exist" in p for p in gone.problems), gone.problems
    assert any("ActionResult missing" in p for p in gone.problems)


def test_corrupt_event_is_reported_with_its_offset_and_skipped_only_when_asked(backend: tuple[Bus, Settings]) -> None:
    bus, settings = backend
    run_id = record_episodes(settings, episodes=1, steps=5, seed=2).run_id
    with bus.producer() as producer:
        producer.produce(settings.topic("steps"), b'{"schema": "step", "version": 1, "run_id": ', key=run_id)
        producer.flush()
    with pytest.raises(CorruptEventError) as info:
        read_selection(bus, Selection(run_id=run_id, episode=0), settings)
    err = info.value
    assert err.topic == settings.topic("steps")
    assert err.offset == bus.watermarks(TopicPartition(err.topic, err.partition))[1] - 1
    assert "not JSON" in err.reason
    selected = read_selection(bus, Selection(run_id=run_id, episode=0), settings, skip_corrupt=True)
    assert [(c.topic, c.partition, c.offset) for c in selected.corrupt] == [(err.topic, err.partition, err.offset)]
    [ep] = read_episodes(bus, Selection(run_id=run_id, episode=0), settings, skip_corrupt=True)
    assert verify_episode(ep, settings).ok


def test_reemitted_run_has_new_ids_and_still_verifies(backend: tuple[Bus, Settings]) -> None:
    bus, settings = backend
    run_id = record_episodes(settings, episodes=1, steps=10, seed=12).run_id
    ep = _one(bus, settings, run_id)
    report = reemit(bus, ep.events, new_run_id=f"{run_id}-again", speed=float("inf"))
    assert report.events == len(ep.events)
    again = _one(bus, settings, f"{run_id}-again")
    assert len(again.events) == len(ep.events)
    assert not {r.event.event_id for r in again.events} & {r.event.event_id for r in ep.events}
    assert verify_episode(again, settings).ok  # action results still point at their (renamed) actions


def _delete_records_before(bus: Bus, tp: TopicPartition, offset: int) -> None:
    """What retention does: the embedded log's own call, or Kafka's DeleteRecords admin request."""
    if hasattr(bus, "delete_records_before"):
        bus.delete_records_before(tp, offset)  # type: ignore[attr-defined]
        return
    from confluent_kafka import TopicPartition as KafkaTP
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bus.url.removeprefix("kafka://")})
    for fut in admin.delete_records([KafkaTP(tp.topic, tp.partition, offset)]).values():
        fut.result(timeout=30)


def _wait_gone(bus: Bus, topic: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while topic in bus.list_topics():
        assert time.monotonic() < deadline, f"topic {topic} still listed after deletion"
        time.sleep(0.2)
