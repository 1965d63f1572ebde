"""The environment in `real` benchmark mode, end to end: Kafka, Redis registry, four Redis data
nodes, a benchmark worker and the aggregator as processes. The env loads the dataset, shuffles the
registry's queued moves onto the data nodes before each benchmark, and rewards with what the
workers measured."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
import redis

import mdde_stream
from mdde_stream.benchmark.client import LocalServices, wait_for_group
from mdde_stream.bus import open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.policies import make_policy
from mdde_stream.replay import Selection, read_episodes
from mdde_stream.replay.verify import verify_episode
from tests.conftest import data_node_urls, require_kafka, require_redis

pytestmark = pytest.mark.integration


def real_stack_settings(tmp_path: Path, topic_tag: str) -> tuple[Settings, str]:
    """Settings on the running stack (Kafka, registry Redis, every data node) with fresh topics, and the tag."""
    kafka = require_kafka()
    state = require_redis()
    urls = data_node_urls()
    for url in urls:
        require_redis(url)
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        data_dir=tmp_path, bus=kafka, state=state, data_nodes=",".join(urls), topic_prefix=f"{topic_tag}{tag}",
        benchmark_node_rates="1000",
    )
    return settings, tag


def test_real_benchmark_steps_measure_the_current_allocation(tmp_path: Path) -> None:
    settings, tag = real_stack_settings(tmp_path, "envreal")
    state = settings.state
    with open_bus(settings=settings) as bus:
        ensure_topics(bus, settings)
        services = LocalServices(settings, workers=1, log_dir=tmp_path / "logs").start()
        try:
            wait_for_group(bus, services.worker_group, 1)
            env = mdde_stream.parallel_env(
                settings=settings, benchmark="real", records=400, operations=2_000, benchmark_frequency=3,
                max_steps=6, seed=3, registry_prefix=f"test:envreal:{tag}", benchmark_timeout_s=90.0,
                publish_events=True,
            )
            try:
                obs, infos = env.reset(seed=3)
                first = next(iter(infos.values()))["throughput"]
                assert first > 0, "the baseline came from the real workers"
                policy = make_policy("greedy", 0)
                rewards = []
                for _ in range(3):
                    obs, reward, *_ = env.step(policy.act(obs))
                    rewards.append(reward)
                allocation = env.unwrapped._allocation if hasattr(env, "unwrapped") else env._allocation
                holders = np.asarray(allocation).sum(axis=0)
                assert (holders >= 1).all()
                # Step 3 was a benchmark step: Eq 3.9 rewards scale with the measured throughput.
                assert max(rewards[-1].values()) > 10, rewards[-1]
                measured = env.latest
                assert measured.reads.sum() == 2_000, "every read of the run was counted exactly once"
                # Reads went only to nodes that hold the fragment after the shuffle.
                assert not (measured.reads[~np.asarray(allocation, dtype=bool)]).any()
            finally:
                env.close()
        finally:
            services.stop()
            bus.delete_topics([t for t in bus.list_topics() if t.startswith(settings.topic_prefix)])
    client = redis.Redis.from_url(state)
    for key in client.scan_iter(f"test:envreal:{tag}*"):
        client.delete(key)


def test_remote_stage_has_the_registry_service_move_the_data(tmp_path: Path) -> None:
    """Remote stage + real benchmark: the registry service loads the records, and moves them on each
    shuffle request — also back to the snapshot after the stage reset the shared state."""
    import subprocess
    import sys

    from mdde_stream.benchmark.client import settings_env
    from mdde_stream.datanodes import DataNodes, RecordSpec

    settings, tag = real_stack_settings(tmp_path, "envrr")
    state = settings.state
    prefix = f"test:envremotereal:{tag}"
    records, operations = 400, 2_000
    log = (tmp_path / "registry.log").open("ab")
    with open_bus(settings=settings) as bus:
        ensure_topics(bus, settings)
        registry = subprocess.Popen(
            [sys.executable, "-m", "mdde_stream", "service", "registry", "--prefix", prefix,
             "--group", f"registry-{tag}"],
            env=settings_env(settings), stdout=log, stderr=subprocess.STDOUT,
        )
        services = LocalServices(settings, workers=1, log_dir=tmp_path / "logs").start()
        env = None
        try:
            wait_for_group(bus, services.worker_group, 1)
            env = mdde_stream.parallel_env(
                settings=settings, stage="remote", benchmark="real", records=records, operations=operations,
                benchmark_frequency=2, max_steps=4, seed=5, registry_prefix=prefix, benchmark_timeout_s=90.0,
                action_timeout_s=60.0, publish_events=True,
            )
            check = DataNodes.from_settings(settings, env.node_ids, RecordSpec.preset("default", record_count=records))
            ranges = env._stage.registry.store.fragment_records()
            policy = make_policy("greedy", 0)
            for _episode in range(2):
                obs, _ = env.reset(seed=5)
                snapshot = np.asarray(env.allocation).copy()
                # the baseline measured the snapshot: the service put the data back after the reset
                assert check.mismatches(snapshot, env.node_ids, ranges, env.fragment_ids) == []
                while env.agents:
                    obs, _, _, truncs, _ = env.step(policy.act(obs))
                    if env.step_count % 2 == 0:  # a benchmark step: data moved first, every read found
                        allocation = np.asarray(env.allocation, dtype=bool)
                        assert check.mismatches(allocation, env.node_ids, ranges, env.fragment_ids) == []
                        result = env._source._client.last_result
                        assert result is not None and result.missing == 0
                        assert env.latest.reads.sum() == operations
                        assert not env.latest.reads[~allocation].any()
                    if any(truncs.values()):
                        break
                assert not np.array_equal(np.asarray(env.allocation), snapshot), "greedy copied fragments"
            check.close()
            env.close()
            # Both recorded episodes rebuild exactly: actions and verdicts re-applied in-process, the
            # real benchmark's recorded results fed back in place of a rerun.
            episodes = read_episodes(bus, Selection(run_id=env.run_id), settings)
            assert len(episodes) == 2
            for recording in episodes:
                report = verify_episode(recording, settings)
                assert report.ok, report
        finally:
            if env is not None:
                env.close()
            services.stop()
            registry.terminate()
            registry.wait(15)
            bus.delete_topics([t for t in bus.list_topics() if t.startswith(settings.topic_prefix)])
    log.close()
    assert registry.returncode == 0, (tmp_path / "registry.log").read_text()[-3000:]
    client = redis.Redis.from_url(state)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
