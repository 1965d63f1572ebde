"""``mdde-stream train | actor | evaluate``: the learner, one hive-mind actor, and the evaluation.

torch is imported inside the commands, so the rest of the CLI works without the ``learn`` extra.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from mdde_stream.cli.checks import (
    fail,
    known_workload,
    positive,
    reachable_redis,
    reachable_state,
    require_extra,
    require_plots,
    writable_dir,
)
from mdde_stream.env.config import default_of

logger = logging.getLogger(__name__)
console = Console()


def _redis_url(explicit: str | None) -> str:
    from mdde_stream.config import get_settings

    url = explicit or get_settings().state
    if not url.startswith(("redis://", "rediss://", "unix://")):
        fail(f"--redis: a Redis URL is needed (got {url!r}): pass --redis or set MDDE_STATE=redis://...")
    return url


def _check_benchmark(benchmark: str) -> None:
    if benchmark not in ("estimate", "simulated", "real"):
        fail(f"--benchmark must be estimate, simulated or real, got {benchmark!r}")


def _describe_options(options: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in options.items() if v is not None)


def _env_options(nodes: int, fragments: int, workload: str, benchmark: str, episode_steps: int,
                 storage_importance: float, do_nothing_worth: float, frequency: int) -> dict[str, Any]:
    return dict(nodes=nodes, fragments=fragments, workload=workload, benchmark=benchmark, max_steps=episode_steps,
                storage_importance=storage_importance, do_nothing_worth=do_nothing_worth,
                benchmark_frequency=frequency, publish_events=False)


_NODES = typer.Option(default_of("nodes"), "--nodes", min=2, help="Data nodes (one agent each).")
_FRAGMENTS = typer.Option(default_of("fragments"), "--fragments", min=1, help="Fragments (Table 5.5: 20).")
_WORKLOAD = typer.Option(default_of("workload"), "--workload", help="Workload preset or distribution.")
_BENCHMARK = typer.Option("estimate", "--benchmark", help="estimate | simulated | real.")
_EPISODE = typer.Option(default_of("max_steps"), "--episode-steps", min=1, help="Steps per episode (Table 5.5: 1,001).")
_STORAGE = typer.Option(default_of("storage_importance"), "--storage-importance", min=0.0,
                        help="ϱ, weight of the storage reward term (Table 5.5: 0.5).")
_DN_WORTH = typer.Option(default_of("do_nothing_worth"), "--do-nothing-worth",
                         help="V, reward of a legal skip (Table 5.5: 1.0).")
_FREQ = typer.Option(default_of("benchmark_frequency"), "--frequency", min=1,
                     help="Benchmark every S steps (Table 5.5: 25).")


def _refuse_run_id(run_id: str, append: bool) -> int:
    """The episode number this run starts at: 0 for a new run id, after the recorded ones with
    ``--append``; a run id already on the bus is refused without ``--append``."""
    from mdde_stream.bus import open_bus
    from mdde_stream.bus.base import BusError
    from mdde_stream.config import get_settings
    from mdde_stream.replay.exceptions import ReplayError
    from mdde_stream.replay.runs import recorded_runs

    settings = get_settings()
    try:
        with open_bus(settings=settings) as bus:
            found = recorded_runs(bus, settings, run_id=run_id).get(run_id)
    except (BusError, ReplayError) as exc:
        fail(f"MDDE_BUS {settings.bus or '(embedded)'}: the bus is not reachable, so run id {run_id} cannot be "
             f"checked or recorded ({exc})")
    if found is None:
        return 0
    if not append:
        fail(f"--run-id {run_id} is already recorded ({len(found.episodes)} episode(s)): choose another run id, "
             f"or pass --append to add episodes {found.next_episode}+ to it")
    return found.next_episode


def train(
    steps: int = typer.Option(20_000, "--steps", min=1, help="Environment steps in total."),
    out: Path = typer.Option(Path("checkpoints/maddpg"), "--out", help="Checkpoint folder (checked before training)."),
    checkpoint_every: int = typer.Option(0, "--checkpoint-every", min=0,
                                         help="Also save OUT/step-NNNNNNN every this many env steps (0: only at the end)."),
    run_id: str = typer.Option(None, "--run-id", help="Run id the episodes and telemetry are recorded under "
                               "(default: a new one). A recorded one is refused unless --append."),
    append: bool = typer.Option(False, "--append", help="Add episodes to an already recorded --run-id."),
    smoke: bool = typer.Option(False, "--smoke", help="Allow --steps <= --learning-starts: a pipeline check that "
                               "never updates the networks (the checkpoint is untrained)."),
    tensorboard: bool = typer.Option(True, "--tensorboard/--no-tensorboard",
                                     help="Write TensorBoard event files to OUT/tensorboard/RUN_ID."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    actors: int = typer.Option(0, "--actors", min=0, help="0: one in-process environment; N: N actor processes "
                               "feeding a Redis replay memory."),
    external_actors: int = typer.Option(0, "--external-actors", min=0, help="Actors started elsewhere "
                                        "(`mdde-stream actor --prefix P`, compose replicas) to wait for."),
    prefix: str = typer.Option(None, "--prefix", help="Key prefix of the replay memory (default: a new one "
                               "per run; give one to let external actors join)."),
    redis: str = typer.Option(None, "--redis", help="Redis URL of the shared replay (default MDDE_STATE)."),
    capacity: int = typer.Option(100_000, "--capacity", min=1, help="Replay capacity (transitions)."),
    learning_starts: int = typer.Option(None, "--learning-starts", min=0, help="Default: the thesis's 25,025."),
    update_every: int = typer.Option(None, "--update-every", min=1,
                                     help="Env steps per update (default 1: Table 5.5 updates the weights every step)."),
    batch_size: int = typer.Option(None, "--batch", min=1, help="Batch size (default 100)."),
    lr: float = typer.Option(None, "--lr", help="Actor and critic learning rate (default: Table 5.5's 0.001)."),
    hidden: int = typer.Option(None, "--hidden", min=1, help="Hidden units (default ⌊0.7·(obs+actions)⌋)."),
    seed: int = typer.Option(0, "--seed", min=0),
    telemetry: bool = typer.Option(True, "--telemetry/--no-telemetry", help="Publish to mdde.telemetry."),
    nodes: int = _NODES, fragments: int = _FRAGMENTS, workload: str = _WORKLOAD, benchmark: str = _BENCHMARK,
    episode_steps: int = _EPISODE, storage_importance: float = _STORAGE, do_nothing_worth: float = _DN_WORTH,
    frequency: int = _FREQ,
) -> None:
    """Train masked MADDPG on the default scenario and write a safetensors checkpoint.

    The in-process run is recorded like `run` (episodes on the bus: `replay`, `report` work on it)."""
    require_extra("torch", "learn", "train")
    require_extra("safetensors", "learn", "train")
    from mdde_stream.agents.checkpoint import save_checkpoint
    from mdde_stream.agents.maddpg import MaddpgConfig
    from mdde_stream.agents.progress import TrainingProgress
    from mdde_stream.agents.telemetry import fan_out
    from mdde_stream.agents.tensorboard import TensorBoardSink, tensorboard_available
    from mdde_stream.env.config import new_run_id
    from mdde_stream.events import RUN_ID_PATTERN

    # Every check runs before the first environment step: a bad option costs no training time.
    positive(lr, "--lr")
    known_workload(workload)
    _check_benchmark(benchmark)
    if external_actors and not prefix:
        fail("--external-actors needs --prefix: external actors need to know where to push")
    recorded = not (actors or external_actors)
    if recorded and steps % episode_steps:
        # A recorded episode cut off mid-way cannot be replayed or exported: train whole episodes.
        whole = -(-steps // episode_steps) * episode_steps
        console.print(f"--steps {steps} rounded up to {whole}: {whole // episode_steps} whole episode(s) of "
                      f"{episode_steps} steps, so every recorded episode is complete", markup=False, highlight=False)
        steps = whole
    overrides = {k: v for k, v in dict(learning_starts=learning_starts, update_every=update_every,
                                        batch_size=batch_size, actor_lr=lr, critic_lr=lr, hidden=hidden).items()
                 if v is not None}
    # Short runs report more often, so their progress bar and TensorBoard show losses at all.
    telemetry_every = min(MaddpgConfig.telemetry_every, max(1, steps // 100))
    config = MaddpgConfig(total_steps=steps, seed=seed, buffer_size=capacity, telemetry_every=telemetry_every,
                          **overrides)  # type: ignore[arg-type]  # typed options, each of its field's type
    if steps <= config.learning_starts:
        message = (f"--steps {steps} is not more than --learning-starts {config.learning_starts}: the networks "
                   f"would never be updated")
        if not smoke:
            fail(f"{message}; raise --steps, lower --learning-starts, or pass --smoke for a pipeline check")
        console.print(f"WARNING: {message} (--smoke): the checkpoint will be an UNTRAINED network",
                      style="bold red", markup=False, highlight=False)
    writable_dir(out, "--out")
    reachable_state()
    redis_url = reachable_redis(_redis_url(redis), "--redis") if actors or external_actors else None
    if run_id is not None and not re.fullmatch(RUN_ID_PATTERN, run_id):
        fail(f"--run-id {run_id!r} must match {RUN_ID_PATTERN}")
    if append and run_id is None:
        fail("--append needs the --run-id to append to")
    run_id = run_id or new_run_id()
    first_episode = _refuse_run_id(run_id, append) if recorded else 0
    if tensorboard and not tensorboard_available():
        console.print("TensorBoard files skipped: the 'tensorboard' package is missing "
                      "(pip install 'mdde-stream[learn]')", style="yellow", markup=False, highlight=False)
        tensorboard = False

    env_options = _env_options(nodes, fragments, workload, benchmark, episode_steps, storage_importance,
                               do_nothing_worth, frequency)
    env_options["publish_events"] = recorded
    shape = f"{actors} actors + {external_actors} external" if external_actors else (
        f"{actors} actors" if actors else "in-process")
    console.print(f"run id {run_id}: {steps} steps, {shape}" + (f", from episode {first_episode}" if first_episode
                                                                  else ""), markup=False, highlight=False)
    console.print(f"environment: {_describe_options(env_options)}", markup=False, highlight=False)
    console.print(f"learner: {_describe_options(config.to_dict())}", markup=False, highlight=False)
    if not recorded:
        console.print("the actors' episodes are not recorded on the bus (only the learner's telemetry)",
                      markup=False, highlight=False)

    extra = {"env": env_options, "learner": config.to_dict(), "run_id": run_id}

    def periodic(learner: Any, step: int) -> None:
        save_checkpoint(learner, out / f"step-{step:07d}", extra={**extra, "env_steps": step})

    sink = board = None
    if telemetry:
        from mdde_stream.agents.telemetry import TelemetrySink

        sink = TelemetrySink(run_id, tags={"algorithm": "maddpg", "actors": str(actors)})
    if tensorboard:
        board = TensorBoardSink(out / "tensorboard" / run_id, hparams={**config.to_dict(), **env_options})
    progress = TrainingProgress(steps, console=console, disable=quiet)

    def shifted(sink_: Any) -> Any:
        """Telemetry episodes numbered like the recorded ones when appending."""
        if sink_ is None or not first_episode:
            return sink_
        return lambda step, episode, metrics: sink_(step, episode + first_episode, metrics)

    emit = fan_out(shifted(sink), board, progress)
    try:
        with progress:
            if actors or external_actors:
                from mdde_stream.agents.distributed import train_distributed

                if external_actors:
                    console.print(f"waiting for {external_actors} actor(s) on prefix {prefix}", markup=False)
                assert redis_url is not None  # checked before training: distributed runs need Redis
                result = train_distributed(config, env_options, redis_url, actors, capacity=capacity, emit=emit,
                                           prefix=prefix, external_actors=external_actors, checkpoint=periodic,
                                           checkpoint_every=checkpoint_every)
                learner, summary = result.learner, dict(updates=result.stats.updates, env_steps=result.stats.env_steps,
                                                        seconds=result.stats.seconds,
                                                        episodes=len(result.stats.returns))
            else:
                from mdde_stream.agents.maddpg import train as train_local
                from mdde_stream.env import parallel_env

                env = parallel_env(run_id=run_id, **env_options)
                env.episode = first_episode - 1  # the env numbers episodes from here on reset()
                try:
                    res = train_local(env, config, emit=emit, checkpoint=periodic, checkpoint_every=checkpoint_every)
                finally:
                    env.close()
                learner, summary = res.learner, dict(updates=res.learner.updates, env_steps=res.steps,
                                                     seconds=res.seconds, episodes=res.episodes)
            progress.finish(int(summary["env_steps"]))
    finally:
        for closing in (sink, board):
            if closing is not None:
                closing.close()
    save_checkpoint(learner, out, extra={**extra, **summary})
    console.print(f"checkpoint written to {out} {json.dumps(summary)}", style="green", markup=False, highlight=False)
    if board is not None:
        console.print(f"TensorBoard: tensorboard --logdir {board.logdir.parent}", markup=False, highlight=False)
    if recorded:
        console.print(f"recorded on the bus as run {run_id}: mdde-stream replay --run {run_id}; "
                      f"mdde-stream report {run_id}", markup=False, highlight=False)
    if summary["updates"] == 0:
        console.print("WARNING: no update was made: the checkpoint is an UNTRAINED network", style="bold red",
                      markup=False, highlight=False)


def actor(
    prefix: str = typer.Option(..., "--prefix", help="Key prefix of the training run's replay memory."),
    redis: str = typer.Option(None, "--redis", help="Redis URL (default MDDE_STATE)."),
    capacity: int = typer.Option(100_000, "--capacity", min=1, help="Replay capacity (must match the learner)."),
    actor_id: int = typer.Option(None, "--id", min=0, help="Actor index (offsets the seed); default: the "
                                 "next free one of this memory, so replicas need no configuration."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop after this many steps."),
    seed: int = typer.Option(0, "--seed", min=0),
    nodes: int = _NODES, fragments: int = _FRAGMENTS, workload: str = _WORKLOAD, benchmark: str = _BENCHMARK,
    episode_steps: int = _EPISODE, storage_importance: float = _STORAGE, do_nothing_worth: float = _DN_WORTH,
    frequency: int = _FREQ,
) -> None:
    """Run one actor: step an environment with the latest policy, push transitions to Redis."""
    require_extra("torch", "learn", "actor")
    known_workload(workload)
    _check_benchmark(benchmark)
    reachable_state()
    redis_url = reachable_redis(_redis_url(redis), "--redis")
    from mdde_stream.agents.actor import ActorConfig, run_actor

    env_options = _env_options(nodes, fragments, workload, benchmark, episode_steps, storage_importance,
                               do_nothing_worth, frequency)
    stats = run_actor(ActorConfig(redis_url=redis_url, prefix=prefix, capacity=capacity, env=env_options,
                                  actor_id=actor_id, seed=seed, max_steps=max_steps))
    console.print(f"actor {stats.actor_id}: {stats.steps} steps, {stats.episodes} episodes, "
                  f"{stats.steps_per_second:.0f} steps/s, policy v{stats.policy_version}")


def evaluate(
    policies: str = typer.Option("random-valid,greedy", "--policies",
                                 help="Comma-separated: random-valid, greedy, starving, do-nothing, maddpg:CHECKPOINT."),
    episodes: int = typer.Option(10, "--episodes", min=1),
    out: Path = typer.Option(Path("evaluation"), "--out", help="Folder for results.json and the SVG plots."),
    seed: int = typer.Option(0, "--seed", min=0, help="Episode e uses seed + e."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON results instead of the table."),
    nodes: int = _NODES, fragments: int = _FRAGMENTS, workload: str = _WORKLOAD, benchmark: str = _BENCHMARK,
    episode_steps: int = _EPISODE, storage_importance: float = _STORAGE, do_nothing_worth: float = _DN_WORTH,
    frequency: int = _FREQ,
) -> None:
    """Compare policies like the thesis's Tables 5.9–5.17: Δthroughput, reads share, action rates."""
    from mdde_stream.agents.evaluate import evaluate as run_evaluation
    from mdde_stream.agents.evaluate import results_table, write_outputs

    specs = [s.strip() for s in policies.split(",") if s.strip()]
    if not specs:
        fail("--policies is empty")
    if any(spec.startswith("maddpg:") for spec in specs):
        require_extra("torch", "learn", "evaluate with a maddpg: policy")
    known_workload(workload)
    _check_benchmark(benchmark)
    writable_dir(out, "--out")
    require_plots()  # the SVG plots: before the episodes, not after them
    env_options = _env_options(nodes, fragments, workload, benchmark, episode_steps, storage_importance,
                               do_nothing_worth, frequency)
    if not as_json:
        console.print(f"environment: {_describe_options(env_options)}", markup=False, highlight=False)
    try:
        results = run_evaluation(specs, episodes, env_options, seed)
    except (ValueError, FileNotFoundError) as exc:
        fail(f"--policies: {exc}")
    paths = write_outputs(results, out, env_options)
    if as_json:
        print(paths[0].read_text())
    else:
        console.print(results_table(results))
        console.print(f"wrote {', '.join(str(p) for p in paths)}")
