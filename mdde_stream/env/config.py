"""Typed configuration of one environment: the scenario's hyperparameters and where things run.

``mdde_stream.parallel_env(**config)`` validates its keyword arguments through :class:`EnvConfig`, so
a typo or an out-of-range value fails at construction with pydantic's message naming the field,
not deep inside a step. Hosts are not configured here: bus and state URLs default to ``Settings``.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mdde_stream.events import RUN_ID_PATTERN
from mdde_stream.registry.fragmenter import block_order

BenchmarkMode = Literal["real", "simulated", "estimate"]
StageMode = Literal["local", "remote"]


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


class EnvConfig(BaseModel):
    """Everything that defines one environment instance (the thesis's symbols in brackets)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: int = Field(default=4, ge=2, description="data nodes |W|, one agent each")
    fragments: int = Field(default=20, ge=1, description="fragments |F|")
    records: int = Field(default=10_000, ge=1, description="records split into the fragments")
    workload: str = Field(default="latest", description="workload preset name (see mdde_stream.workloads); "
                          "Table 5.5 reads the latest distribution (its 'large' records only matter on real data nodes)")
    operations: int | None = Field(default=None, ge=1, description="reads per benchmark; None: the preset's")
    benchmark: BenchmarkMode = Field(default="estimate", description="how ⟨τ, N, R⟩ is obtained")
    benchmark_frequency: int = Field(default=25, ge=1, description="benchmark every S steps (S)")
    do_nothing_worth: float = Field(default=1.0, description="reward of a legal skip (V)")
    storage_importance: float = Field(default=0.5, ge=0.0, description="weight of the storage term (ϱ)")
    allow_skip: bool = Field(default=True, description="whether the skip action (slot 0) is legal")
    conflicts_count_as_valid: bool = Field(
        default=False, description="reward a legal action rejected only because an earlier agent acted first as valid"
    )
    max_steps: int = Field(default=1001, ge=1, description="episode length; truncation after this many steps")
    fragment_grouping: Literal["hashed", "contiguous"] = Field(
        default="hashed", description="how each node's records are grouped into its fragments (fragmenter)")
    fragment_numbering: Literal["node", "thesis"] | list[int] = Field(
        default="node", description="which node's fragments carry which indices: node order, the thesis run's "
        "(blocks on w0, w2, w3, w1), or an explicit node permutation")
    fragment_seed: int = Field(default=0, ge=0, description="seed of the hashed grouping")
    delete_mask: Literal["replicas", "mdde"] = Field(
        default="replicas", description="delete legality in the action mask: another node holds the fragment "
        "(the thesis's rule), or 'mdde': another node's replica was read in the latest measurement (MDDE's code)")
    baseline: Literal["simulated", "real"] = Field(
        default="simulated", description="estimate mode: what measures the one baseline taken at start-up and "
        "reused at every reset; 'real' needs data nodes (MDDE_DATA_NODES) and running benchmark workers")
    seed: int = Field(default=0, ge=0, description="workload/benchmark seed when reset() gets none")
    run_id: str = Field(default_factory=new_run_id, pattern=RUN_ID_PATTERN,
                        description="letters, digits and ._:- (it names the run's report and export files)")
    publish_events: bool = Field(
        default=False, description="record actions, results and steps on the bus (the embedded bus is a file under "
        "MDDE_DATA_DIR, ./.mdde by default); off for the Python API, on for `mdde-stream run`. A remote stage "
        "publishes its actions either way: they are the registry service's requests")
    stage: StageMode = Field(default="local", description="registry in-process, or the registry service over the bus")
    registry_prefix: str | None = Field(
        default=None,
        min_length=1,
        description="Redis key prefix of the registry state. Remote stage: the service's root (None: "
        "'mdde:registry'); the run's state lives under '<root>:run:<run id>', so concurrent runs are isolated. "
        "Local stage: None gives a prefix of this run, removed on close, so that environments sharing one "
        "Redis never overwrite each other's state",
    )
    bus: str | None = Field(default=None, description="bus URL; None: Settings.bus")
    state: str | None = Field(default=None, description="allocation state URL; None: Settings.state")
    clients: int = Field(default=50, ge=1, description="benchmark clients")
    service_rates: list[float] | None = Field(default=None, description="simulated reads/s per node")
    estimator_j: float = 0.0
    estimator_k: float = 0.7
    benchmark_timeout_s: float = Field(default=120.0, gt=0)
    action_timeout_s: float = Field(
        default=30.0, gt=0, description="remote stage: how long a step waits for the registry service. Longer than "
        "Kafka's session timeout (MDDE_SESSION_TIMEOUT_S, 10 s) plus a service restart, so a restarted service "
        "answers in time; a step given up on is fenced off and never applied later")

    @model_validator(mode="after")
    def _check(self) -> EnvConfig:
        if self.fragments < self.nodes:
            raise ValueError(f"fragments ({self.fragments}) must be >= nodes ({self.nodes}): every node starts with one")
        if self.records < self.fragments:
            raise ValueError(f"records ({self.records}) must be >= fragments ({self.fragments})")
        block_order(self.fragment_numbering, self.nodes)  # the fragmenter's own check: a permutation, or a named one that fits
        if self.service_rates is not None and len(self.service_rates) != self.nodes:
            raise ValueError(f"service_rates has {len(self.service_rates)} entries for {self.nodes} nodes")
        return self


def default_of(name: str) -> Any:
    """The default of ``EnvConfig.<name>``: the one place the thesis's Table 5.5 lives. Commands take
    their option defaults from here instead of repeating the numbers."""
    return EnvConfig.model_fields[name].get_default(call_default_factory=False)


def describe(config: BaseModel) -> str:
    """One line of ``field=value`` pairs: what a command prints as its effective configuration."""
    return " ".join(f"{k}={v}" for k, v in config.model_dump(mode="json").items() if v is not None)
