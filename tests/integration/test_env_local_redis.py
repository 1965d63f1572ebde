"""Local-stage environments keeping their registry in one real Redis must not touch each other's state."""

from __future__ import annotations

import numpy as np
import redis

from mdde_stream.config import Settings
from mdde_stream.env import EnvConfig, MddeParallelEnv
from mdde_stream.policies import make_policy
from tests.conftest import require_redis

OPTIONS = {"nodes": 2, "fragments": 4, "records": 400, "max_steps": 30, "publish_events": False}


def _keys(client: redis.Redis, run_id: str) -> list[bytes]:
    return list(client.scan_iter(match=f"mdde:registry:local:{run_id}:*", count=1000))


def test_two_local_envs_on_one_redis_keep_their_own_state() -> None:
    url = require_redis()
    settings = Settings(state=url)
    client = redis.Redis.from_url(url)
    envs = [MddeParallelEnv(EnvConfig(seed=i, **OPTIONS), settings=settings) for i in range(2)]
    try:
        policies = [make_policy("random-valid", seed=i) for i in range(2)]
        observations_of = {}
        for i, env in enumerate(envs):
            observations_of[env.run_id], _ = env.reset(seed=i)
            assert _keys(client, env.run_id), "the local registry should keep its state in Redis"
        # Interleave steps and resets: with a shared prefix one env's reset wiped the other's state.
        for _ in range(60):
            for env, policy in zip(envs, policies):
                observations, _, terms, truncs, _ = env.step(policy.act(observations_of[env.run_id]))
                observations_of[env.run_id] = observations
                if any(terms.values()) or any(truncs.values()):
                    observations_of[env.run_id], _ = env.reset()
                # The in-process mirror and the Redis state agree for each env separately.
                assert np.array_equal(env.allocation, env._stage.registry.store.matrix())
    finally:
        for env in envs:
            env.close()
    for env in envs:
        assert _keys(client, env.run_id) == [], "a local env removes the registry state it created"
    client.close()
