"""The environment's remote stage against the real registry service on Kafka + Redis.

The service runs as a subprocess (``mdde-stream service registry``) on a uuid topic prefix and a
uuid Redis key prefix. Every remote step must give exactly the verdicts and allocation an in-process
registry gives for the same actions, and the step latency is reported. Without Kafka or Redis the
test fails (never skips): a missing server is a broken CI, not an optional feature.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from mdde_stream.bus import TopicPartition, open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.env import EnvConfig, MddeParallelEnv
from mdde_stream.env.stage_client import StageTimeout
from mdde_stream.events import ActionResult, decode_event
from mdde_stream.policies import RandomValid
from mdde_stream.registry.testing import redis_state_url, require_redis, unique_prefix

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def kafka_url() -> str:
    url = os.environ.get("MDDE_BUS", "")
    return url if url.startswith("kafka://") else "kafka://127.0.0.1:9092"


@pytest.fixture
def stack(tmp_path: Path):
    """Settings on a fresh topic prefix + Redis prefix, with the project topics created."""
    state = redis_state_url()
    require_redis(state)
    settings = Settings(bus=kafka_url(), state=state, topic_prefix=f"t{uuid.uuid4().hex[:10]}",
                        partitions=2, data_dir=tmp_path)
    try:
        bus = open_bus(settings=settings)
        ensure_topics(bus, settings)
        bus.close()
    except Exception as exc:  # noqa: BLE001 - any connection failure is a clear test failure
        pytest.fail(f"Kafka at {settings.bus} is not usable ({exc}); start the local stack or set MDDE_BUS")
    return settings, unique_prefix("env")


def start_service(settings: Settings, redis_prefix: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "MDDE_BUS": settings.bus, "MDDE_STATE": settings.state,
           "MDDE_TOPIC_PREFIX": settings.topic_prefix, "MDDE_PARTITIONS": str(settings.partitions)}
    return subprocess.Popen(
        [sys.executable, "-m", "mdde_stream", "service", "registry", "--prefix", redis_prefix, "--group", f"g-{redis_prefix}"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_remote_steps_match_the_in_process_registry(stack, tmp_path: Path) -> None:
    settings, redis_prefix = stack
    common = dict(records=1_000, max_steps=60, benchmark_frequency=5, seed=3, operations=5_000)
    remote = MddeParallelEnv(
        EnvConfig(stage="remote", registry_prefix=redis_prefix, action_timeout_s=60, **common), settings=settings
    )
    local = MddeParallelEnv(EnvConfig(publish_events=False, **common),
                            settings=Settings(data_dir=tmp_path / "local", bus="", state=""))
    service = start_service(settings, redis_prefix, tmp_path / "service.log")
    latencies = []
    try:
        obs_r, _ = remote.reset(seed=3)
        obs_l, _ = local.reset(seed=3)
        policy = RandomValid(11)
        rng = np.random.default_rng(5)
        for episode in range(2):
            if episode:
                obs_r, _ = remote.reset()
                obs_l, _ = local.reset()
            while remote.agents:
                actions = policy.act(obs_r)
                if rng.random() < 0.3:  # also masked, invalid actions
                    actions[remote.possible_agents[rng.integers(4)]] = int(rng.integers(101))
                started = time.perf_counter()
                obs_r, rew_r, _, trunc_r, info_r = remote.step(actions)
                latencies.append(time.perf_counter() - started)
                obs_l, rew_l, _, trunc_l, info_l = local.step(actions)
                assert {a: i["code"] for a, i in info_r.items()} == {a: i["code"] for a, i in info_l.items()}
                assert rew_r == rew_l and trunc_r == trunc_l
                assert np.array_equal(remote.allocation, local.allocation)
                for agent in obs_r:
                    assert np.array_equal(obs_r[agent]["action_mask"], obs_l[agent]["action_mask"])
            # the mirror the remote stage keeps equals the state the service wrote to Redis
            assert np.array_equal(remote.allocation, remote._stage.registry.store.matrix())
    finally:
        remote.close()
        local.close()
        stop(service)
    assert service.returncode == 0, (tmp_path / "service.log").read_text()[-2000:]

    # the service, not the stage, published the verdicts: one per action of the run
    with open_bus(settings=settings) as bus:
        topic = settings.topic(ActionResult.TOPIC)
        consumer = bus.consumer(f"check-{uuid.uuid4().hex[:6]}")
        consumer.assign([TopicPartition(topic, p) for p in range(settings.partitions)])
        results = []
        deadline = time.monotonic() + 20
        while len(results) < 480 and time.monotonic() < deadline:
            results += [decode_event(r.value) for r in consumer.poll(0.5, 1000)]
        consumer.close()
    assert len([r for r in results if r.run_id == remote.run_id]) == 2 * 60 * 4

    warm = np.array(latencies[5:]) * 1e3  # the first steps include the service joining its group
    print(f"\nremote step latency: p50 {np.percentile(warm, 50):.2f} ms, p99 {np.percentile(warm, 99):.2f} ms")
    assert np.percentile(warm, 50) < 1_000


def test_remote_stage_without_a_service_times_out_and_the_step_is_never_applied_later(stack, tmp_path: Path) -> None:
    settings, redis_prefix = stack
    env = MddeParallelEnv(
        EnvConfig(stage="remote", registry_prefix=redis_prefix, records=1_000, action_timeout_s=1.5,
                  operations=1_000),
        settings=settings,
    )
    service = None
    try:
        env.reset(seed=0)
        before = env._stage.registry.store.matrix().copy()
        copy = {**dict.fromkeys(env.possible_agents, 0), "n0": 21 + 20 + 5}  # n0 copies f5 from n1
        started = time.monotonic()
        with pytest.raises(StageTimeout, match=r"answered 0 of 4 actions .* is the registry service running"):
            env.step(copy)
        assert 1.4 < time.monotonic() - started < 10
        # The service comes up late and finds the step: fenced off, answered 2612, never applied.
        service = start_service(settings, redis_prefix, tmp_path / "service.log")
        with open_bus(settings=settings) as bus:
            topic = settings.topic(ActionResult.TOPIC)
            consumer = bus.consumer(f"check-{uuid.uuid4().hex[:6]}")
            consumer.assign([TopicPartition(topic, p) for p in range(settings.partitions)])
            late, deadline = [], time.monotonic() + 60
            while len(late) < 4 and time.monotonic() < deadline:
                late += [e for e in (decode_event(r.value) for r in consumer.poll(0.5, 100)) if e.run_id == env.run_id]
            consumer.close()
        assert sorted({(r.accepted, r.code) for r in late}) == [(False, 2612)]
        assert np.array_equal(env._stage.registry.store.matrix(), before)
        env.reset(seed=1)  # and the run goes on
        _, _, _, _, infos = env.step(copy)
        assert infos["n0"]["accepted"]
    finally:
        env.close()
        if service is not None:
            stop(service)


def test_concurrent_runs_are_isolated_and_nothing_is_applied_twice(stack, tmp_path: Path) -> None:
    """Two remote runs share one registry service without touching each other's allocation; an action
    of a run nobody set up is answered 2611 and dead-lettered; a local run's recorded actions are not
    applied again by the service."""
    from mdde_stream.events import ActionKind, ActionSubmitted, DeadLetter

    settings, redis_prefix = stack
    common = dict(records=1_000, max_steps=2_000, benchmark_frequency=25, operations=2_000, action_timeout_s=60)
    envs = [MddeParallelEnv(EnvConfig(stage="remote", registry_prefix=redis_prefix, seed=s, **common), settings=settings)
            for s in (1, 2)]
    local = MddeParallelEnv(EnvConfig(publish_events=True, max_steps=20, records=1_000, operations=2_000),
                            settings=settings.model_copy(update={"state": ""}))
    service = start_service(settings, redis_prefix, tmp_path / "service.log")
    rejected_legal = steps = 0
    try:
        policies = [RandomValid(7), RandomValid(8)]
        observations = [env.reset(seed=i)[0] for i, env in enumerate(envs)]
        while envs[0].agents:
            for i, env in enumerate(envs):  # interleaved: both runs in flight on the same service
                observations[i], _, _, _, infos = env.step(policies[i].act(observations[i]))
                steps += 1
                rejected_legal += sum(info["legal"] and not info["accepted"] for info in infos.values())
                assert np.array_equal(env.allocation, env._stage.registry.store.matrix())
        obs, _ = local.reset(seed=0)
        while local.agents:
            obs, *_ = local.step(RandomValid(3).act(obs))
        stray = ActionSubmitted(run_id="nobody-started-this", agent="n0", agent_index=0, action_index=1,
                                kind=ActionKind.DELETE, fragment="f0", target="n0")
        with open_bus(settings=settings) as bus, bus.producer() as producer:
            producer.produce(settings.topic(stray.TOPIC), stray.to_bytes(), key=stray.key)
            producer.flush()
        time.sleep(3)
    finally:
        for env in envs:
            env.close()
        local.close()
        stop(service)
    assert service.returncode == 0, (tmp_path / "service.log").read_text()[-2000:]
    # only conflicts within a step reject a legal action (random-valid picks legal actions only)
    assert rejected_legal / (steps * 4) <= 0.02, rejected_legal

    with open_bus(settings=settings) as bus:
        events = []
        for name in (ActionResult.TOPIC, DeadLetter.TOPIC):  # read each topic to its end
            topic = settings.topic(name)
            parts = [TopicPartition(topic, p) for p in range(bus.list_topics()[topic])]
            want = sum(bus.watermarks(tp)[1] - bus.watermarks(tp)[0] for tp in parts)
            consumer = bus.consumer(f"check-{uuid.uuid4().hex[:6]}")
            consumer.assign(parts)
            got, deadline = 0, time.monotonic() + 30
            while got < want and time.monotonic() < deadline:
                batch = consumer.poll(0.5, 5000)
                got += len(batch)
                events += [decode_event(r.value) for r in batch]
            consumer.close()
    results = [e for e in events if isinstance(e, ActionResult)]
    stray_results = [r for r in results if r.run_id == "nobody-started-this"]
    assert [(r.accepted, r.code) for r in stray_results] == [(False, 2611)]
    assert any(isinstance(e, DeadLetter) and e.error_type == "unknown-run" for e in events)
    # the local run recorded its own verdicts once; the service added none
    assert len([r for r in results if r.run_id == local.run_id]) == 20 * 4
    for env in envs:
        assert len({r.action_event_id for r in results if r.run_id == env.run_id}) == 2_000 * 4
