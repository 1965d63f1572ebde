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
from tests.conftest import data_node_urls, require_kafka, require_redis

pytestmark = pytest.mark.integration


def test_real_benchmark_steps_measure_the_current_allocation(tmp_path: Path) -> None:
    kafka = require_kafka()
    state = require_redis()
    urls = data_node_urls()
    for url in urls:
        require_redis(url)
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        data_dir=tmp_path, bus=kafka, state=state, data_nodes=",".join(urls), topic_prefix=f"envreal{tag}",
        benchmark_node_rates="1000",
    )
    with open_bus(settings=settings) as bus:
        ensure_topics(bus, settings)
        services = LocalServices(settings, workers=1, log_dir=tmp_path / "logs").start()
        try:
            wait_for_group(bus, services.worker_group, 1)
            env = mdde_stream.parallel_env(
                settings=settings, benchmark="real", records=400, operations=2_000, benchmark_frequency=3,
                max_steps=6, seed=3, registry_prefix=f"test:envreal:{tag}", benchmark_timeout_s=90.0,
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
