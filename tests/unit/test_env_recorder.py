"""One recorder publishes the actions whichever stage runs (embedded bus, in-memory state).

The remote stage is answered by the real registry service, run in a thread on the same embedded bus
and serving the run's in-memory registry; the Kafka + Redis path is covered by
``tests/integration/test_env_remote.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mdde_stream.bus import Bus, Record, TopicPartition
from mdde_stream.config import Settings
from mdde_stream.env import EnvConfig, MddeParallelEnv
from mdde_stream.events import (
    ActionResult,
    ActionSubmitted,
    EpisodeStarted,
    EstimatorResult,
    Event,
    StepCompleted,
    decode_event,
)
from mdde_stream.policies import RandomValid
from mdde_stream.services.registry import RegistryService, RunRegistries

STEPS = 8


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, bus="", state="memory", partitions=2)


@contextmanager
def registry_service(env: MddeParallelEnv) -> Iterator[None]:
    """The registry service in a thread, applying the remote env's actions to the env's own state."""
    assert env._bus is not None
    registries = RunRegistries(env.settings)
    registries.register(env.run_id, env._stage.registry)
    service = RegistryService(registries, env._bus, env.settings, group_id=f"reg-{env.run_id}", poll_timeout_s=0.05)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        service.stop()
        thread.join(10)


def recorded(bus: Bus, settings: Settings, cls: type[Event]) -> list[tuple[Record, Event]]:
    """Every record of ``cls``'s topic with its decoded (validated) event, partition by partition."""
    topic = settings.topic(cls.TOPIC)
    consumer = bus.consumer(f"reader-{cls.TOPIC}")
    consumer.assign([TopicPartition(topic, p) for p in range(bus.list_topics()[topic])])
    out = []
    while records := consumer.poll(0.2, 10_000):
        out += [(r, decode_event(r.value)) for r in records]
    consumer.close()
    return out


def run_episode(env: MddeParallelEnv) -> list[str]:
    """One episode; returns the ids of the actions the recorder was handed, in order."""
    published: list[str] = []
    record = env.recorder.actions

    def spy(submitted: list[ActionSubmitted]) -> None:
        published.extend(a.event_id for a in submitted)
        record(submitted)

    env.recorder.actions = spy  # type: ignore[method-assign]
    policy = RandomValid(0)
    obs, _ = env.reset(seed=0)
    while env.agents:
        obs, *_ = env.step(policy.act(obs))
    return published


@pytest.mark.parametrize("stage", ["local", "remote"])
def test_the_recorder_publishes_every_action_once_whichever_stage_applies_it(settings: Settings, stage: str) -> None:
    env = MddeParallelEnv(EnvConfig(stage=stage, max_steps=STEPS, publish_events=True, action_timeout_s=20),
                          settings=settings)
    try:
        if stage == "remote":
            with registry_service(env):
                published = run_episode(env)
        else:
            published = run_episode(env)
        env.recorder.flush()
        assert env._bus is not None
        actions = recorded(env._bus, settings, ActionSubmitted)
        results = [e for _, e in recorded(env._bus, settings, ActionResult)]
    finally:
        env.close()
    agents = len(env.possible_agents)
    assert len(published) == STEPS * agents
    # What the recorder was handed is all there is on the topic, once each, keyed by the run, in step and
    # agent order; only an in-process stage's record is marked ``in_process`` (the service skips those).
    assert [e.event_id for _, e in actions] == published
    assert all(r.key == env.run_id.encode() for r, _ in actions)
    assert [(e.step, e.agent_index) for _, e in actions] == [(t, i) for t in range(1, STEPS + 1) for i in range(agents)]
    assert {e.in_process for _, e in actions} == {stage == "local"}  # type: ignore[attr-defined]
    # One verdict per action: the recorder's in-process, the service's remotely, never both.
    assert sorted(r.action_event_id for r in results) == sorted(published)  # type: ignore[attr-defined]


def test_a_remote_stage_gets_its_actions_published_without_telemetry(settings: Settings) -> None:
    env = MddeParallelEnv(EnvConfig(stage="remote", max_steps=STEPS, publish_events=False, action_timeout_s=20),
                          settings=settings)
    try:
        with registry_service(env):
            published = run_episode(env)
        assert env._bus is not None
        assert [e.event_id for _, e in recorded(env._bus, settings, ActionSubmitted)] == published
        assert len(recorded(env._bus, settings, ActionResult)) == len(published)  # the service's answers only
        assert all(not recorded(env._bus, settings, cls) for cls in (EpisodeStarted, StepCompleted, EstimatorResult))
    finally:
        env.close()


def test_without_telemetry_an_in_process_env_has_no_bus_and_records_nothing(settings: Settings) -> None:
    env = MddeParallelEnv(EnvConfig(max_steps=STEPS, publish_events=False), settings=settings)
    try:
        assert env._bus is None and not env.recorder.publishes_actions and not env.recorder.telemetry
        assert len(run_episode(env)) == STEPS * len(env.possible_agents)  # handed over, dropped at no cost
    finally:
        env.close()



def test_a_part_that_fails_to_open_closes_what_was_opened(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark source is opened last: when it fails, the stage, the recorder and the bus are closed."""
    import mdde_stream.env.parallel as parallel

    closed: list[str] = []
    for cls, name in ((parallel.InProcessStage, "stage"), (parallel.RunRecorder, "recorder")):
        original = cls.close
        monkeypatch.setattr(cls, "close", lambda self, o=original, n=name: (closed.append(n), o(self))[1])

    def no_source(*_: object, **__: object) -> None:
        raise RuntimeError("benchmark source unavailable")

    monkeypatch.setattr(parallel, "make_source", no_source)
    with pytest.raises(RuntimeError, match="benchmark source unavailable"):
        MddeParallelEnv(EnvConfig(publish_events=True), settings=settings)
    assert closed == ["stage", "recorder"]  # the reverse of the order they were opened in
