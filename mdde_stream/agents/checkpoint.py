"""Checkpoints and policy payloads as safetensors: tensors and JSON, never pickle.

A checkpoint is a folder with ``model.safetensors`` (every network: actors, critics, targets) and
``config.json`` (the network shapes, the hyperparameters and whatever the caller adds, e.g. the
environment configuration), so it reloads without the code that trained it guessing anything. The
policy payload sent to actors over Redis is the actors' weights only, with the shapes in the
safetensors metadata; loading it parses a header and copies bytes — nothing is executed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, load_file, save, save_file

from mdde_stream.agents.maddpg import Dims, Maddpg, MaddpgConfig

logger = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "mdde-maddpg/1"


class CheckpointError(ValueError):
    """A checkpoint or policy payload that does not fit the expected format or shapes."""


def _tensors(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v.detach().contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(learner: Maddpg, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created); returns it."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    save_file(_tensors(learner), str(path / MODEL_FILE), metadata={"format": FORMAT})
    doc = {"format": FORMAT, "dims": asdict(learner.dims), "config": learner.config.to_dict(),
           "updates": learner.updates, "extra": extra or {}}
    (path / CONFIG_FILE).write_text(json.dumps(doc, indent=2, default=str))
    logger.info("checkpoint written to %s (%d updates)", path, learner.updates)
    return path


def read_checkpoint_config(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"no {CONFIG_FILE} in {directory}: not a MADDPG checkpoint folder") from None
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {doc.get('format')!r}, expected {FORMAT!r}")
    return doc


def load_checkpoint(directory: str | Path) -> tuple[Maddpg, dict[str, Any]]:
    """The learner stored in ``directory`` and the ``extra`` section saved with it."""
    doc = read_checkpoint_config(directory)
    dims = Dims(**doc["dims"])
    config = MaddpgConfig.from_dict(doc["config"])
    config.hidden, config.critic_hidden = dims.hidden, dims.critic_hidden
    learner = Maddpg(dims.n_agents, dims.obs_dim, dims.n_actions, config)
    state = load_file(str(Path(directory) / MODEL_FILE))
    try:
        learner.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {directory} do not match their config: {exc}") from None
    learner.updates = int(doc.get("updates", 0))
    return learner, doc.get("extra", {})


def policy_bytes(learner: Maddpg) -> bytes:
    """The actors' weights as safetensors bytes, shapes in the metadata (for the actors over Redis)."""
    meta = {"format": FORMAT, **{k: str(v) for k, v in asdict(learner.dims).items()}}
    return save(_tensors(learner.actors, "actors."), metadata=meta)


def load_policy_bytes(data: bytes, into: Maddpg | None = None) -> Maddpg:
    """Actors from :func:`policy_bytes` — into ``into`` (shapes must match) or a new learner."""
    tensors = load(data)
    meta = _metadata(data)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"policy payload has format {meta.get('format')!r}, expected {FORMAT!r}")
    dims = Dims(**{k: int(meta[k]) for k in Dims.__dataclass_fields__})
    if into is None:
        into = Maddpg(dims.n_agents, dims.obs_dim, dims.n_actions,
                      MaddpgConfig(hidden=dims.hidden, critic_hidden=dims.critic_hidden))
    elif into.dims != dims:
        raise CheckpointError(f"policy payload is for {dims}, the local networks are {into.dims}")
    state = {k.removeprefix("actors."): v for k, v in tensors.items()}
    try:
        into.actors.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"policy payload does not fit the actors: {exc}") from None
    return into


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors buffer (8-byte little-endian header length, JSON header)."""
    if len(data) < 8:
        raise CheckpointError("policy payload is too short to be safetensors")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise CheckpointError("policy payload header is truncated")
    try:
        header = json.loads(data[8 : 8 + size])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"policy payload header is not JSON: {exc}") from None
    return dict(header.get("__metadata__") or {})
