"""The defaults are the thesis's base configuration (Table 5.5), kept in one place."""

from __future__ import annotations

import inspect

from mdde_stream.agents.maddpg import MaddpgConfig, thesis_hidden
from mdde_stream.env import EnvConfig
from mdde_stream.env.config import default_of
from mdde_stream.workloads import PRESETS


def test_environment_defaults_are_table_5_5() -> None:
    cfg = EnvConfig()
    assert cfg.workload == "latest"  # Listing C.4's distribution; its large records are a data-node choice
    assert cfg.do_nothing_worth == 1.0  # V
    assert cfg.storage_importance == 0.5  # ϱ
    assert cfg.benchmark_frequency == 25  # S
    assert cfg.max_steps == 1001
    assert cfg.fragments == 20 and cfg.nodes == 4 and cfg.records == 10_000
    assert cfg.clients == 50
    assert (cfg.estimator_j, cfg.estimator_k) == (0.0, 0.7)
    assert cfg.benchmark == "estimate" and cfg.baseline == "simulated"
    assert cfg.fragment_grouping == "hashed"


def test_learner_defaults_are_table_5_5() -> None:
    cfg = MaddpgConfig()
    assert cfg.actor_lr == cfg.critic_lr == 0.001
    assert cfg.tau == 0.01 and cfg.gamma == 0.95
    assert cfg.learning_starts == 25_025  # 25 episodes of 1,001 steps
    assert cfg.update_every == 1  # "multi-step 1": weights updated at every step
    obs, actions = 4 * 20 * 3, 4 * 20 + 20 + 1
    assert thesis_hidden(obs, actions) == int((obs + actions) * 0.7)


def test_large_workloads_are_100_fields_of_3000_characters() -> None:
    for name in ("latest-large", "uniform-large"):
        spec = PRESETS[name]
        assert (spec.field_count, spec.field_length_min, spec.field_length_max) == (100, 3_000, 3_000)
        assert (spec.record_count, spec.operation_count, spec.clients) == (10_000, 100_000, 50)


def test_commands_take_their_defaults_from_the_environment_config() -> None:
    from mdde_stream.cli import agents as agents_cli
    from mdde_stream.cli.run import run

    for command in (run, agents_cli.evaluate, agents_cli.train):
        params = inspect.signature(command).parameters
        steps = params.get("steps") if command is run else params["episode_steps"]
        assert steps is not None and steps.default.default == default_of("max_steps") == 1001
        assert params["frequency"].default.default == 25
        assert params["workload"].default.default == "latest"
        assert params["do_nothing_worth"].default.default == 1.0
        assert params["storage_importance"].default.default == 0.5
