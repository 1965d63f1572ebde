"""Export recorded episodes as an offline-RL dataset, and load them back.

Observations and action masks are not on the bus: they come from rebuilding each episode through
the environment (:mod:`mdde_stream.replay.rebuild`) with its recorded actions.

Per episode of T steps and A agents (agent order = ``agents``; W nodes, F fragments, n actions):

=================  ====================  ==========================================================
``observations``   (T+1, A, W, F, 3) f32 row 0 after reset, row t after step t (scenario channels)
``action_masks``   (T+1, A, n) int8      legal actions in the state of the same row
``actions``        (T, A) int64          action index each agent took at step t+1
``rewards``        (T, A) float64        reward of each agent at step t+1 (as recorded)
``terminations``   (T, A) bool           per agent, after step t+1
``truncations``    (T, A) bool           per agent, after step t+1
=================  ====================  ==========================================================

Two on-disk formats:

* ``minari`` (default when the ``minari`` package imports): ``DIR`` becomes a Minari datasets root
  holding ``mdde/<name>-v0`` (Arrow storage, lossless). Minari is single-agent, so the joint agent is
  stored: observation space ``Dict{agent: Dict{observation, action_mask}}``, action space
  ``Dict{agent: Discrete(n)}``. Minari's scalar ``rewards`` is the team reward, **the sum over
  agents**; the per-agent rewards are in ``infos["agent_rewards"]`` (shape (T+1, A), agent order =
  ``options["agents"]``, row 0 = reset, all zero), likewise ``infos["agent_terminations"]`` and
  ``infos["agent_truncations"]``; scalar ``terminations``/``truncations`` are true once every agent's is.
  The episode's run id, episode number and agents are in each episode's ``options``, its seed in ``seed``.
  ``MINARI_DATASETS_PATH=DIR`` then ``minari.load_dataset("mdde/<name>-v0")`` opens it with Minari.
  ``env_spec`` is :mod:`mdde_stream.env.joint`'s ``mdde/JointMdde-v0`` (the PettingZoo env as one
  Gymnasium agent, same spaces, summed reward) with the first episode's recorded configuration, so
  ``dataset.recover_environment()`` gives a steppable environment and ``.parallel`` on it is the
  ``mdde_v0.parallel_env(**config)`` itself. Stepped with the recorded actions from
  ``reset(seed=<episode seed>)``, it reproduces the run's first episode exactly (estimate and
  simulated benchmarks); a later episode reused the estimator baseline its recording environment
  took at start-up, so it matches only ``replay --verify``'s rebuild. A recording of the real
  benchmark recovers with the estimator (no data nodes are assumed offline); none publishes events.
* ``npz``: ``DIR/manifest.json`` (format version, agents, per-episode run id/episode/seed/steps/file)
  and one ``DIR/episode-<k>.npz`` (compressed) per episode holding the six arrays above by name.

:func:`load_dataset` reads either back into the same :class:`ReplayDataset`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mdde_stream.config import Settings
from mdde_stream.replay.exceptions import ReplayError
from mdde_stream.replay.rebuild import EpisodeRebuild
from mdde_stream.replay.recording import EpisodeRecording

logger = logging.getLogger(__name__)

DatasetFormat = Literal["minari", "npz"]
NPZ_FORMAT_VERSION = 1
ARRAYS = ("observations", "action_masks", "actions", "rewards", "terminations", "truncations")


@dataclass
class EpisodeData:
    """One exported episode (shapes in the module docstring)."""

    run_id: str
    episode: int
    seed: int | None
    agents: list[str]
    observations: np.ndarray
    action_masks: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.actions.shape[0])

    def arrays(self) -> dict[str, Any]:  # np.ndarray values; Any so savez_compressed(**arrays) type-checks
        return {name: getattr(self, name) for name in ARRAYS}


@dataclass
class ReplayDataset:
    format: str
    path: Path
    episodes: list[EpisodeData] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[EpisodeData]:
        return iter(self.episodes)


def minari_available() -> bool:
    try:
        import minari  # noqa: F401
        from minari.dataset._storages import get_storage_keys  # noqa: F401
    except ImportError:
        return False
    return True


def episode_data(recording: EpisodeRecording, settings: Settings | None = None) -> EpisodeData:
    """Rebuild one recorded episode and collect its arrays."""
    with EpisodeRebuild(recording, settings) as rebuild:
        agents = rebuild.agents
        obs, _ = rebuild.reset()
        observations = [np.stack([obs[a]["observation"] for a in agents])]
        masks = [np.stack([obs[a]["action_mask"] for a in agents])]
        actions, rewards, terms, truncs = [], [], [], []
        for step in rebuild.steps():
            observations.append(np.stack([step.observations[a]["observation"] for a in agents]))
            masks.append(np.stack([step.observations[a]["action_mask"] for a in agents]))
            actions.append([step.actions[a] for a in agents])
            # The recorded rewards (verification is a separate mode; the dataset is what was recorded).
            assert step.record.summary is not None
            rewards.append([step.record.summary.rewards[a] for a in agents])
            terms.append([step.terminations[a] for a in agents])
            truncs.append([step.truncations[a] for a in agents])
    return EpisodeData(
        run_id=recording.run_id, episode=recording.episode, seed=rebuild.started.seed, agents=list(agents),
        observations=np.stack(observations).astype(np.float32), action_masks=np.stack(masks).astype(np.int8),
        actions=np.asarray(actions, dtype=np.int64), rewards=np.asarray(rewards, dtype=np.float64),
        terminations=np.asarray(terms, dtype=bool), truncations=np.asarray(truncs, dtype=bool),
    )


def export_dataset(
    recordings: Iterable[EpisodeRecording],
    directory: str | Path,
    name: str | None = None,
    fmt: DatasetFormat | None = None,
    settings: Settings | None = None,
) -> Path:
    """Write the episodes to ``directory``; returns the dataset's path (what ``load_dataset`` takes)."""
    recordings = list(recordings)
    if not recordings:
        raise ReplayError("nothing to export: no episode selected")
    fmt = fmt or ("minari" if minari_available() else "npz")
    episodes = [episode_data(r, settings) for r in recordings]
    assert recordings[0].started is not None  # episode_data needs it too
    config = recovery_config(recordings[0].started.config)
    shapes = {(e.observations.shape[1:], e.action_masks.shape[1:], tuple(e.agents)) for e in episodes}
    if len(shapes) > 1:
        raise ReplayError("the selected episodes have different agents or shapes; export them separately")
    name = _safe_name(name or f"replay-{recordings[0].run_id}")
    directory = Path(directory)
    if fmt == "minari":
        path = _write_minari(episodes, directory, name, config)
    elif fmt == "npz":
        path = _write_npz(episodes, directory)
    else:
        raise ValueError(f"unknown dataset format {fmt!r}: use minari or npz")
    logger.info("exported %d episodes (%d steps) as %s to %s", len(episodes), sum(e.steps for e in episodes), fmt, path)
    return path


def load_dataset(path: str | Path) -> ReplayDataset:
    """Load an exported dataset: an NPZ folder, a Minari dataset folder, or a root holding one."""
    path = Path(path)
    if (path / "manifest.json").exists():
        return _read_npz(path)
    candidates = [path / "data"] if (path / "data" / "metadata.json").exists() else []
    if (path / "metadata.json").exists():
        candidates = [path]
    if not candidates:
        candidates = sorted(p.parent for p in path.glob("*/*/data/metadata.json"))
    if len(candidates) != 1:
        found = ", ".join(str(c) for c in candidates) or "none"
        raise ReplayError(f"{path} holds no single exported dataset (manifest.json or Minari metadata.json); found: {found}")
    return _read_minari(candidates[0])


def recovery_config(recorded: dict[str, Any]) -> dict[str, Any]:
    """The recorded ``EnvConfig`` as keyword arguments of a fresh, local, silent environment."""
    from mdde_stream.env.config import EnvConfig
    from mdde_stream.replay.rebuild import _PLACEMENT

    values = {k: v for k, v in recorded.items() if k != "run_id"}
    values.update(_PLACEMENT)
    if values.get("benchmark") == "real":
        values["benchmark"] = "estimate"
    EnvConfig(**values)  # refuse a configuration this version cannot build
    return {k: v for k, v in values.items() if v is not None}


# -- NPZ --------------------------------------------------------------------------------------------
def _write_npz(episodes: list[EpisodeData], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "manifest.json").exists():
        raise ReplayError(f"{directory} already holds a dataset (manifest.json); choose another folder")
    entries = []
    for k, ep in enumerate(episodes):
        file = f"episode-{k}.npz"
        np.savez_compressed(directory / file, **ep.arrays())
        entries.append({"run_id": ep.run_id, "episode": ep.episode, "seed": ep.seed, "steps": ep.steps, "file": file})
    manifest = {"format": "mdde-replay-npz", "version": NPZ_FORMAT_VERSION, "agents": episodes[0].agents,
                "arrays": list(ARRAYS), "episodes": entries}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory


def _read_npz(directory: Path) -> ReplayDataset:
    manifest = json.loads((directory / "manifest.json").read_text())
    if manifest.get("format") != "mdde-replay-npz" or manifest.get("version") != NPZ_FORMAT_VERSION:
        raise ReplayError(f"{directory}/manifest.json is not an mdde replay dataset of version {NPZ_FORMAT_VERSION}")
    out = ReplayDataset("npz", directory)
    for entry in manifest["episodes"]:
        with np.load(directory / entry["file"]) as arrays:
            data = {name: arrays[name] for name in ARRAYS}
        out.episodes.append(EpisodeData(entry["run_id"], entry["episode"], entry["seed"], list(manifest["agents"]), **data))
    return out


# -- Minari -----------------------------------------------------------------------------------------
@contextmanager
def _datasets_root(root: Path) -> Iterator[None]:
    """Minari places datasets under ``MINARI_DATASETS_PATH``; point it at ``root`` for one call."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root.resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def _write_minari(episodes: list[EpisodeData], root: Path, name: str, config: dict[str, Any]) -> Path:
    try:
        import minari
        from gymnasium import spaces
        from minari.data_collector.episode_buffer import EpisodeBuffer
    except ImportError as exc:
        raise ReplayError(f"the minari format needs the export extra: pip install 'mdde-stream[export]' ({exc})") from None
    from mdde_stream.env.joint import env_spec
    first = episodes[0]
    _, w, f, c = first.observations.shape[1:]
    n = first.action_masks.shape[-1]
    agent_obs = spaces.Dict({
        "observation": spaces.Box(0.0, 1.0, shape=(w, f, c), dtype=np.float32),
        "action_mask": spaces.Box(0, 1, shape=(n,), dtype=np.int8),
    })
    observation_space = spaces.Dict({a: agent_obs for a in first.agents})
    action_space = spaces.Dict({a: spaces.Discrete(n) for a in first.agents})
    buffers = []
    for k, ep in enumerate(episodes):
        pad = lambda x: np.concatenate([np.zeros_like(x[:1]), x])  # noqa: E731 - infos have a reset row
        buffers.append(EpisodeBuffer(
            id=k, seed=ep.seed, options={"run_id": ep.run_id, "episode": ep.episode, "agents": ep.agents},
            observations={a: {"observation": ep.observations[:, i], "action_mask": ep.action_masks[:, i]}
                          for i, a in enumerate(ep.agents)},
            actions={a: ep.actions[:, i] for i, a in enumerate(ep.agents)},
            rewards=ep.rewards.sum(axis=1).tolist(),
            terminations=ep.terminations.all(axis=1).tolist(),
            truncations=ep.truncations.all(axis=1).tolist(),
            infos={"agent_rewards": pad(ep.rewards), "agent_terminations": pad(ep.terminations),
                   "agent_truncations": pad(ep.truncations)},
        ))
    dataset_id = f"mdde/{name}-v0"
    root.mkdir(parents=True, exist_ok=True)
    spec = env_spec(config)
    with _datasets_root(root), warnings.catch_warnings():
        for unset in ("author", "author_email", "code_permalink"):  # a recording has neither author nor code link
            warnings.filterwarnings("ignore", message=f"`{unset}` is set to None")
        try:
            minari.create_dataset_from_buffers(
                dataset_id, buffers, env=spec, eval_env=spec, observation_space=observation_space,
                action_space=action_space, algorithm_name="recorded", data_format="arrow", jpeg_encoding=False,
                description="MDDE episodes replayed from the bus, as the joint agent of all data nodes: "
                            "rewards = sum over agents; per-agent rewards in infos['agent_rewards'] "
                            "(agent order in each episode's options['agents']).",
            )
        except ValueError as exc:
            raise ReplayError(f"could not write Minari dataset {dataset_id} under {root}: {exc}") from exc
    return root / "mdde" / f"{name}-v0"


def _read_minari(data_path: Path) -> ReplayDataset:
    try:
        from minari import MinariDataset
    except ImportError as exc:
        raise ReplayError(f"{data_path} is a Minari dataset; reading it needs the 'minari' package: {exc}") from None
    dataset = MinariDataset(data_path)
    metas = list(dataset.storage.get_episode_metadata(range(dataset.storage.total_episodes)))
    out = ReplayDataset("minari", data_path.parent)
    for meta, ep in zip(metas, dataset.iterate_episodes()):
        options: dict[str, Any] = meta.get("options") or {}
        agents = list(options.get("agents") or list(ep.actions))
        obs, acts, infos = ep.observations, ep.actions, ep.infos
        out.episodes.append(EpisodeData(
            run_id=str(options.get("run_id", "")), episode=int(options.get("episode", ep.id)),
            seed=None if meta.get("seed") is None else int(meta["seed"]), agents=agents,
            observations=np.stack([obs[a]["observation"] for a in agents], axis=1).astype(np.float32),
            action_masks=np.stack([obs[a]["action_mask"] for a in agents], axis=1).astype(np.int8),
            actions=np.stack([acts[a] for a in agents], axis=1).astype(np.int64),
            rewards=np.asarray(infos["agent_rewards"][1:], dtype=np.float64),
            terminations=np.asarray(infos["agent_terminations"][1:], dtype=bool),
            truncations=np.asarray(infos["agent_truncations"][1:], dtype=bool),
        ))
    return out


def _safe_name(name: str) -> str:
    """Minari ids allow word characters, dots and dashes; the version suffix is ours."""
    return re.sub(r"[^\w.-]+", "-", name).strip("-") or "replay"
