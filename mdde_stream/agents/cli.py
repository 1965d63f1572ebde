"""``mdde-stream train | actor | evaluate``: the learner, one hive-mind actor, and the evaluation.

Plain typer command functions; the main CLI mounts them with :func:`register`. torch is imported
inside the commands, so the rest of the CLI works without the ``learn`` extra.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from mdde_stream.env.config import default_of

logger = logging.getLogger(__name__)
console = Console()


def _redis_url(explicit: str | None) -> str:
    from mdde_stream.config import get_settings

    url = explicit or get_settings().state
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise typer.BadParameter(f"a Redis URL is needed (got {url!r}): pass --redis or set MDDE_STATE=redis://...")
    return url


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


def train(
    steps: int = typer.Option(20_000, "--steps", min=1, help="Environment steps in total."),
    out: Path = typer.Option(Path("checkpoints/maddpg"), "--out", help="Checkpoint folder."),
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
    """Train masked MADDPG on the default scenario and write a safetensors checkpoint."""
    from mdde_stream.agents.checkpoint import save_checkpoint
    from mdde_stream.agents.maddpg import MaddpgConfig
    from mdde_stream.env import parallel_env
    from mdde_stream.env.config import new_run_id

    overrides = {k: v for k, v in dict(learning_starts=learning_starts, update_every=update_every,
                                        batch_size=batch_size, actor_lr=lr, critic_lr=lr, hidden=hidden).items()
                 if v is not None}
    config = MaddpgConfig(total_steps=steps, seed=seed, buffer_size=capacity, **overrides)
    env_options = _env_options(nodes, fragments, workload, benchmark, episode_steps, storage_importance,
                               do_nothing_worth, frequency)
    run_id = new_run_id()
    sink = None
    if telemetry:
        from mdde_stream.agents.telemetry import TelemetrySink

        sink = TelemetrySink(run_id, tags={"algorithm": "maddpg", "actors": str(actors)})
    if external_actors and not prefix:
        raise typer.BadParameter("external actors need to know where to push: pass --prefix")
    shape = f"{actors} actors + {external_actors} external" if external_actors else (
        f"{actors} actors" if actors else "in-process")
    console.print(f"run id [bold]{run_id}[/bold]: {steps} steps, {shape}")
    console.print(f"environment: {_describe_options(env_options)}", markup=False, highlight=False)
    console.print(f"learner: {_describe_options(config.to_dict())}", markup=False, highlight=False)
    try:
        if actors or external_actors:
            from mdde_stream.agents.distributed import train_distributed

            if external_actors:
                console.print(f"waiting for {external_actors} actor(s) on prefix [bold]{prefix}[/bold]")
            result = train_distributed(config, env_options, _redis_url(redis), actors, capacity=capacity, emit=sink,
                                       prefix=prefix, external_actors=external_actors)
            learner, summary = result.learner, dict(updates=result.stats.updates, env_steps=result.stats.env_steps,
                                                    seconds=result.stats.seconds, episodes=len(result.stats.returns))
        else:
            from mdde_stream.agents.maddpg import train as train_local

            env = parallel_env(run_id=run_id, **env_options)
            try:
                res = train_local(env, config, emit=sink)
            finally:
                env.close()
            learner, summary = res.learner, dict(updates=res.learner.updates, env_steps=res.steps,
                                                 seconds=res.seconds, episodes=res.episodes)
    finally:
        if sink is not None:
            sink.close()
    save_checkpoint(learner, out, extra={"env": env_options, "learner": config.to_dict(), "run_id": run_id, **summary})
    console.print(f"[green]checkpoint written to {out}[/green] {json.dumps(summary)}")


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
    from mdde_stream.agents.actor import ActorConfig, run_actor

    env_options = _env_options(nodes, fragments, workload, benchmark, episode_steps, storage_importance,
                               do_nothing_worth, frequency)
    stats = run_actor(ActorConfig(redis_url=_redis_url(redis), prefix=prefix, capacity=capacity, env=env_options,
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
        raise typer.BadParameter("--policies is empty")
    env_options = _env_options(nodes, fragments, workload, benchmark, episode_steps, storage_importance,
                               do_nothing_worth, frequency)
    if not as_json:
        console.print(f"environment: {_describe_options(env_options)}", markup=False, highlight=False)
    try:
        results = run_evaluation(specs, episodes, env_options, seed)
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]evaluation failed:[/red] {exc}")
        raise typer.Exit(2) from None
    paths = write_outputs(results, out, env_options)
    if as_json:
        print(paths[0].read_text())
    else:
        console.print(results_table(results))
        console.print(f"wrote {', '.join(str(p) for p in paths)}")


def register(app: typer.Typer) -> None:
    """Mount the three commands on the main ``mdde-stream`` application."""
    app.command("train")(train)
    app.command("actor")(actor)
    app.command("evaluate")(evaluate)


app = typer.Typer(help="Learners and evaluation.", no_args_is_help=True)
register(app)


if __name__ == "__main__":
    app()
