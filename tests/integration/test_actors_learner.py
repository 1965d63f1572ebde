"""Several actor processes and one learner share a real Redis replay memory."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
import redis

pytest.importorskip("torch", reason="the `learn` extra (torch, safetensors) is not installed")

from mdde_stream.agents.distributed import train_distributed  # noqa: E402
from mdde_stream.agents.maddpg import MaddpgConfig  # noqa: E402
from mdde_stream.agents.memory_redis import PolicyChannel, RedisReplay  # noqa: E402
from tests.conftest import require_redis  # noqa: E402

pytestmark = pytest.mark.integration

ENV = dict(nodes=2, fragments=4, records=400, max_steps=25, workload="latest", storage_importance=0.5,
           do_nothing_worth=1.0)


def test_two_actor_processes_feed_one_learner() -> None:
    url = require_redis()
    prefix = f"test:hive:{uuid.uuid4().hex[:12]}"
    config = MaddpgConfig(total_steps=800, learning_starts=200, update_every=8, batch_size=32, seed=7,
                          telemetry_every=80)
    client = redis.Redis.from_url(url)
    RedisReplay(client, prefix, capacity=500).request_stop()  # left by an earlier run on this prefix
    try:
        result = train_distributed(config, ENV, url, actors=2, capacity=500, prefix=prefix, publish_every=5,
                                   keep_keys=True, timeout_s=120)
        stats = result.stats
        replay = RedisReplay(client, prefix, capacity=500)
        # Experience from both processes, bounded by the ring.
        assert replay.pushed >= config.total_steps
        assert len(replay) == 500
        assert sorted(stats.episodes_by_actor) == [0, 1]
        assert sum(stats.episodes_by_actor.values()) == len(stats.returns) >= 800 // 25 - 2
        by_actor = replay.pushed_by()
        assert sorted(by_actor) == ["0", "1"] and sum(by_actor.values()) == replay.pushed
        # Both really ran: each pushed at least whole episodes (process start-up order varies under load).
        assert min(by_actor.values()) >= ENV["max_steps"]
        # The learner kept the update ratio over everything the actors pushed, and published weights.
        assert replay.pushed >= stats.env_steps >= config.total_steps
        assert stats.updates == (stats.env_steps - config.learning_starts) // config.update_every + 1
        assert stats.published >= stats.updates // 5
        assert PolicyChannel(client, prefix).version() == stats.published
        assert all(math.isfinite(v) for v in stats.last_metrics.values())
        assert replay.stop_requested()
        # Learned weights act within the mask on what the actors stored.
        batch = replay.sample(64, np.random.default_rng(0))
        for i in range(64):
            actions = result.learner.act(batch["obs"][i], batch["mask"][i])
            assert batch["mask"][i][np.arange(2), actions].all()
    finally:
        RedisReplay(client, prefix, capacity=500).clear()
        client.close()


def test_an_actor_started_elsewhere_joins_the_learner_by_prefix(tmp_path) -> None:
    """The compose shape: a learner with one actor of its own waits for one `mdde-stream actor` replica,
    which claims the next free index and stops when the learner does."""
    import os
    import subprocess
    import sys

    url = require_redis()
    prefix = f"test:hive-ext:{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(url)
    log = tmp_path / "actor.log"
    options = ["--nodes", "2", "--fragments", "4", "--workload", "latest", "--episode-steps", "25"]
    external = subprocess.Popen(
        [sys.executable, "-m", "mdde_stream", "actor", "--prefix", prefix, "--redis", url, "--capacity", "400",
         *options],
        env={**os.environ, "MDDE_BUS": "", "MDDE_STATE": ""}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        config = MaddpgConfig(total_steps=600, learning_starts=150, update_every=8, batch_size=32, seed=3)
        result = train_distributed(config, ENV, url, actors=1, capacity=400, prefix=prefix, publish_every=5,
                                   keep_keys=True, timeout_s=120, external_actors=1, wait_timeout_s=120)
        external.wait(60)
        output = log.read_text()
        assert external.returncode == 0, output[-2000:]
        replay = RedisReplay(client, prefix, capacity=400)
        by_actor = replay.pushed_by()
        assert sorted(by_actor) == ["0", "1"], by_actor  # claimed indices: no two actors share a seed
        assert min(by_actor.values()) > 0 and sum(by_actor.values()) >= config.total_steps
        # Both finished episodes; the external actor may report its last one after the learner's final
        # drain (the learner does not wait for processes it did not start), so count what is left too.
        late = {int(report["actor"]) for report in replay.drain_returns()}
        assert set(result.stats.episodes_by_actor) | late == {0, 1}
    finally:
        if external.poll() is None:
            external.kill()
        RedisReplay(client, prefix, capacity=400).clear()
        client.close()


def test_a_learner_waiting_for_absent_actors_says_where_they_should_push() -> None:
    url = require_redis()
    prefix = f"test:hive-none:{uuid.uuid4().hex[:12]}"
    config = MaddpgConfig(total_steps=10, learning_starts=5, seed=1)
    with pytest.raises(TimeoutError, match=f"--prefix {prefix}"):
        train_distributed(config, ENV, url, actors=0, capacity=50, prefix=prefix, external_actors=1, wait_timeout_s=1)
