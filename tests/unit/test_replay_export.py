"""Replay on the embedded bus (no servers): dataset export round trips, pacing, the CLI, selection rules."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mdde_stream.bus import Record, open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.cli import app
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import ActionResult, Telemetry
from mdde_stream.replay import RecordedEvent, Selection, read_episodes, read_selection
from mdde_stream.replay.export import ARRAYS, episode_data, export_dataset, load_dataset
from mdde_stream.replay.recording import _ranges
from mdde_stream.replay.reemit import reemit
from mdde_stream.replay.testing import record_episodes


@pytest.fixture
def recorded(embedded_settings: Settings) -> tuple[Settings, str]:
    summary = record_episodes(embedded_settings, episodes=2, steps=12, seed=21, benchmark_frequency=4)
    return embedded_settings, summary.run_id


@pytest.mark.parametrize("fmt", ["minari", "npz"])
def test_export_round_trip_is_exact(recorded: tuple[Settings, str], tmp_path: Path, fmt: str) -> None:
    settings, run_id = recorded
    with open_bus(settings=settings) as bus:
        episodes = read_episodes(bus, Selection(run_id=run_id), settings)
    path = export_dataset(episodes, tmp_path / "out", fmt=fmt, settings=settings)  # type: ignore[arg-type]
    loaded = load_dataset(tmp_path / "out")
    assert loaded.format == fmt and len(loaded) == 2
    for got, rec in zip(loaded, episodes):
        want = episode_data(rec, settings)
        assert (got.run_id, got.episode, got.seed, got.agents) == (run_id, rec.episode, 21 + rec.episode, want.agents)
        for name in ARRAYS:
            a, b = getattr(got, name), getattr(want, name)
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name
        # Shapes: T+1 observations/masks, T actions/rewards; last step truncates; rewards are the recorded ones.
        assert got.observations.shape == (13, 4, 4, 20, 3) and got.action_masks.shape == (13, 4, 101)
        assert got.actions.shape == got.rewards.shape == (12, 4)
        assert got.truncations[-1].all() and not got.truncations[:-1].any() and not got.terminations.any()
        recorded_rewards = [[s.summary.rewards[a] for a in got.agents] for _, s in sorted(rec.steps.items())]
        assert np.array_equal(got.rewards, np.asarray(recorded_rewards))
        # Every recorded action was legal under the exported mask of the state it was taken in.
        taken = np.take_along_axis(got.action_masks[:-1], got.actions[:, :, None], axis=2)
        assert taken.all()
    assert path.exists()


def test_minari_export_opens_with_minari_itself(recorded: tuple[Settings, str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    minari = pytest.importorskip("minari")
    settings, run_id = recorded
    with open_bus(settings=settings) as bus:
        episodes = read_episodes(bus, Selection(run_id=run_id, episode=0), settings)
    export_dataset(episodes, tmp_path, name="demo", fmt="minari", settings=settings)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    dataset = minari.load_dataset("mdde/demo-v0")
    assert dataset.total_episodes == 1 and dataset.total_steps == 12
    ep = next(dataset.iterate_episodes())
    assert np.allclose(ep.rewards, np.asarray(ep.infos["agent_rewards"][1:]).sum(axis=1))

    # env_spec: the recorded configuration, recovered as a Gymnasium env that replays the episode exactly
    # (the first episode: later ones reuse the estimator baseline their recording env took at start-up).
    assert dataset.spec.env_spec is not None and dataset.spec.env_spec.id == "mdde/JointMdde-v0"
    env = dataset.recover_environment()
    assert env.observation_space == dataset.observation_space and env.action_space == dataset.action_space
    meta = next(iter(dataset.storage.get_episode_metadata([0])))
    agents = meta["options"]["agents"]
    assert env.unwrapped.agents == agents and meta["seed"] == 21
    obs, _ = env.reset(seed=meta["seed"])
    for a in agents:
        assert np.array_equal(obs[a]["observation"], ep.observations[a]["observation"][0])
    for t in range(dataset.total_steps):
        obs, reward, terminated, truncated, info = env.step({a: ep.actions[a][t] for a in agents})
        assert reward == pytest.approx(ep.rewards[t]) and np.allclose(info["agent_rewards"], ep.infos["agent_rewards"][t + 1])
        assert all(np.array_equal(obs[a]["action_mask"], ep.observations[a]["action_mask"][t + 1]) for a in agents)
    assert truncated and not terminated
    env.close()


def test_export_refuses_an_occupied_folder(recorded: tuple[Settings, str], tmp_path: Path) -> None:
    settings, run_id = recorded
    with open_bus(settings=settings) as bus:
        episodes = read_episodes(bus, Selection(run_id=run_id, episode=0), settings)
    export_dataset(episodes, tmp_path, fmt="npz", settings=settings)
    with pytest.raises(Exception, match="already holds a dataset"):
        export_dataset(episodes, tmp_path, fmt="npz", settings=settings)


def test_reemit_paces_at_the_requested_speed(embedded_settings: Settings) -> None:
    settings = embedded_settings
    with open_bus(settings=settings) as bus:
        ensure_topics(bus, settings)
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        events = [
            RecordedEvent(
                Record(settings.topic("telemetry"), 0, i, b"run-pace", b"", 0),
                Telemetry(run_id="run-pace", step=i, ts=t0 + timedelta(seconds=0.5 * i), source="t", metrics={"x": i}),
            )
            for i in range(5)
        ]  # recorded over 2 s
        started = time.monotonic()
        report = reemit(bus, events, new_run_id="run-fast", speed=4.0)
        elapsed = time.monotonic() - started
        assert 0.45 <= elapsed < 1.5, elapsed  # 2 s / 4
        assert report.recorded_span_s == pytest.approx(2.0)
        again = read_selection(bus, Selection(run_id="run-fast"), settings).events
        assert [e.event.step for e in again] == [0, 1, 2, 3, 4]
        gaps = np.diff([e.event.ts.timestamp() for e in again])
        assert np.allclose(gaps, 0.125, atol=1e-6)
        with pytest.raises(ValueError, match="speed must be > 0"):
            reemit(bus, events, speed=0)


def test_selection_rules() -> None:
    with pytest.raises(ValueError, match="select something"):
        Selection()
    with pytest.raises(ValueError, match="give the run id"):
        Selection(episode=1)
    with pytest.raises(ValueError, match="to_offset"):
        Selection(from_offset=5, to_offset=5)
    assert "run r, episode 2" == Selection(run_id="r", episode=2).describe()
    assert _ranges([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"


def test_cli_verifies_and_reports_divergence(recorded: tuple[Settings, str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    settings, run_id = recorded
    monkeypatch.setenv("MDDE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MDDE_BUS", "")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ok = runner.invoke(app, ["replay", "--run", run_id, "--episode", "1", "--verify",
                                 "--export", str(tmp_path / "ds"), "--format", "npz"])
        assert ok.exit_code == 0, ok.output
        assert "OK, 12 steps" in ok.output and "exported 1 episode" in ok.output
        assert len(load_dataset(tmp_path / "ds")) == 1

        # A second copy of one action result with a flipped verdict and a newer event id wins the step.
        with open_bus(settings=settings) as bus:
            [ep] = read_episodes(bus, Selection(run_id=run_id, episode=0), settings)
            result = next(r.event for r in ep.events if isinstance(r.event, ActionResult) and r.event.step == 4)
            with bus.producer() as producer:
                bad = result.model_copy(update={"event_id": "f" * 32, "accepted": not result.accepted})
                producer.produce(settings.topic("action-results"), bad.to_bytes(), key=run_id)
        diverged = runner.invoke(app, ["replay", "--run", run_id, "--episode", "0", "--verify"])
        assert diverged.exit_code == 1, diverged.output
        assert "DIVERGES at step 4" in diverged.output and result.agent in diverged.output

        missing = runner.invoke(app, ["replay", "--run", "run-never-recorded", "--verify"])
        assert missing.exit_code == 3 and "no recorded event matches run run-never-recorded" in missing.output
        usage = runner.invoke(app, ["replay", "--episode", "1"])
        assert usage.exit_code == 2
    finally:
        get_settings.cache_clear()
