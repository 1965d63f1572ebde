"""Masked MADDPG: masking holds everywhere, training runs end to end, checkpoints reload exactly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the `learn` extra (torch, safetensors) is not installed")

from mdde_stream.agents.checkpoint import (  # noqa: E402
    CheckpointError,
    load_checkpoint,
    load_policy_bytes,
    policy_bytes,
    save_checkpoint,
)
from mdde_stream.agents.maddpg import Maddpg, MaddpgConfig, joint, masked, random_valid, thesis_hidden, train  # noqa: E402
from mdde_stream.agents.memory import LocalReplay, make_transition, stack  # noqa: E402
from mdde_stream.config import Settings  # noqa: E402

SMALL_ENV = dict(nodes=2, fragments=4, records=400, max_steps=40, publish_events=False, workload="latest",
                 storage_importance=0.5, do_nothing_worth=1.0)


def small_config(**overrides) -> MaddpgConfig:
    base = dict(total_steps=300, learning_starts=100, update_every=4, batch_size=32, seed=3, telemetry_every=50)
    return MaddpgConfig(**{**base, **overrides})


def random_masks(rng: np.random.Generator, n: int, a: int) -> np.ndarray:
    mask = (rng.random((n, a)) < 0.2).astype(np.int8)
    mask[np.arange(n), rng.integers(0, a, n)] = 1  # never an empty row
    return mask


def test_thesis_layer_width_for_the_default_scenario() -> None:
    # 4 agents × 20 fragments: obs 4·20·3 = 240, actions 4·20 + 20 + 1 = 101 -> ⌊0.7·341⌋ = 238.
    assert thesis_hidden(240, 101) == 238
    learner = Maddpg(4, 240, 101)
    assert learner.actors[0][0].out_features == 238
    assert learner.critics[0][0].in_features == 4 * (240 + 101)


def test_actions_never_leave_the_mask_greedy_or_sampled() -> None:
    rng = np.random.default_rng(0)
    learner = Maddpg(3, 12, 30, MaddpgConfig(hidden=16))
    for _ in range(200):
        obs = rng.normal(size=(3, 12)).astype(np.float32) * 5
        mask = random_masks(rng, 3, 30)
        for actions in (learner.act(obs, mask), learner.act(obs, mask, rng), random_valid(mask, rng)):
            assert mask[np.arange(3), actions].all()


def test_masked_gumbel_softmax_only_picks_legal_actions() -> None:
    torch.manual_seed(0)
    logits = torch.randn(500, 30) * 10
    mask = torch.zeros(500, 30, dtype=torch.int8)
    mask[:, [2, 7]] = 1
    sample = torch.nn.functional.gumbel_softmax(masked(logits, mask), hard=True)
    assert set(sample.argmax(dim=1).tolist()) <= {2, 7}
    assert torch.all(sample.sum(dim=1) == 1)


def test_target_actions_respect_the_next_mask() -> None:
    """With a single legal next action, the critic's target must be Q'(s', that action)."""
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    n, d, a = 2, 6, 5
    learner = Maddpg(n, d, a, MaddpgConfig(hidden=8, gamma=1.0, reward_scale=1.0, tau=0.0, critic_lr=0.0,
                                           actor_lr=0.0, grad_norm_clip=0.0))
    obs = rng.normal(size=(n, d)).astype(np.float32)
    next_mask = np.zeros((n, a), np.int8)
    next_mask[:, 3] = 1
    t = make_transition(obs, np.ones((n, a), np.int8), np.array([0, 1]), np.zeros(n), obs, next_mask, False)
    batch = stack([t] * 16)
    metrics = learner.update(batch)
    one_hot = torch.zeros(n, a)
    one_hot[:, 3] = 1
    with torch.no_grad():
        target_in = torch.cat([torch.as_tensor(obs).flatten(), one_hot.flatten()]).unsqueeze(0)
        y = learner.target_critics[0](target_in).item()
        q = learner.critics[0](torch.cat([torch.as_tensor(obs).flatten(),
                                          torch.eye(a)[[0, 1]].flatten()]).unsqueeze(0)).item()
    assert metrics["losses/critic_0"] == pytest.approx((q - y) ** 2, rel=1e-4)


def test_trains_end_to_end_and_checkpoint_reloads_to_the_same_actions(tmp_path: Path) -> None:
    from mdde_stream.env import parallel_env

    env = parallel_env(**SMALL_ENV)
    try:
        events: list[tuple[int, int, dict[str, float]]] = []
        result = train(env, small_config(), emit=lambda s, e, m: events.append((s, e, m)))
        observations, _ = env.reset(seed=11)
        obs, mask = joint(observations, list(env.possible_agents))
    finally:
        env.close()

    learner = result.learner
    assert learner.updates == (300 - 100) // 4
    assert all(math.isfinite(v) for v in result.last_metrics.values()) and "losses/critic" in result.last_metrics
    assert result.episodes == 300 // 40 and len(result.returns) == result.episodes
    names = {k for _, _, m in events for k in m}
    assert {"losses/critic", "losses/actor", "charts/return", "charts/policy_entropy", "charts/random_actions"} <= names
    # Same seed, same init: the trained actor must have moved away from it.
    torch.manual_seed(3)
    fresh = Maddpg(2, 24, 13, small_config())
    assert not torch.equal(fresh.actors[0][0].weight, learner.actors[0][0].weight)

    save_checkpoint(learner, tmp_path / "ckpt", extra={"env": SMALL_ENV})
    loaded, extra = load_checkpoint(tmp_path / "ckpt")
    assert extra["env"]["nodes"] == 2
    assert loaded.dims == learner.dims
    rng = np.random.default_rng(5)
    probes = [(obs, mask)] + [(rng.random((2, 24)).astype(np.float32), random_masks(rng, 2, 13)) for _ in range(50)]
    for o, m in probes:
        np.testing.assert_array_equal(loaded.act(o, m), learner.act(o, m))
        np.testing.assert_array_equal(loaded.logits(o, m), learner.logits(o, m))
    for a, b in zip(loaded.state_dict().values(), learner.state_dict().values()):
        assert torch.equal(a, b)


def test_policy_payload_round_trip_and_shape_check() -> None:
    torch.manual_seed(0)
    learner = Maddpg(2, 10, 7, MaddpgConfig(hidden=9))
    data = policy_bytes(learner)
    copy = load_policy_bytes(data)
    obs = np.random.default_rng(0).random((2, 10)).astype(np.float32)
    mask = np.ones((2, 7), np.int8)
    np.testing.assert_array_equal(copy.logits(obs, mask), learner.logits(obs, mask))
    with pytest.raises(CheckpointError, match="local networks"):
        load_policy_bytes(data, into=Maddpg(2, 10, 8, MaddpgConfig(hidden=9)))
    with pytest.raises(Exception):
        load_policy_bytes(b"\x00" * 4)


def test_local_replay_is_a_bounded_ring() -> None:
    replay = LocalReplay(capacity=5)
    for k in range(12):
        replay.push([make_transition(np.full((2, 3), k), np.ones((2, 4)), np.array([k, k]), np.zeros(2),
                                     np.zeros((2, 3)), np.ones((2, 4)), False)])
    assert len(replay) == 5 and replay.pushed == 12
    batch = replay.sample(200, np.random.default_rng(0))
    assert set(batch["action"][:, 0].tolist()) == {7, 8, 9, 10, 11}


def test_training_progress_reaches_the_telemetry_topic(tmp_path: Path) -> None:
    from mdde_stream.agents.telemetry import TelemetrySink
    from mdde_stream.bus import open_bus
    from mdde_stream.env import parallel_env
    from mdde_stream.events import Telemetry, decode_event

    settings = Settings(data_dir=tmp_path, bus="", state="", data_nodes="", elasticsearch="")
    env = parallel_env(settings=settings, **SMALL_ENV)
    try:
        with TelemetrySink("run-telemetry-test", settings=settings) as sink:
            train(env, small_config(total_steps=200), emit=sink)
    finally:
        env.close()
    with open_bus(settings=settings) as bus:
        consumer = bus.consumer("telemetry-test")
        consumer.subscribe([settings.topic(Telemetry.TOPIC)])
        events = []
        for _ in range(20):
            events += [decode_event(r.value) for r in consumer.poll(0.5)]
            if len(events) >= sink.sent:
                break
        consumer.close()
    assert len(events) == sink.sent > 0
    assert all(isinstance(e, Telemetry) and e.source == "maddpg" for e in events)
    assert any("losses/critic" in e.metrics for e in events)
    assert any("charts/return" in e.metrics for e in events)
