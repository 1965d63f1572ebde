"""Event schemas: every message that crosses the bus is one of these pydantic models.

Each event carries its schema name and version in the payload itself, so a consumer can tell a
stale producer from a corrupt message and route either to the dead-letter topic with a reason.
Payloads are JSON (never pickle): anything read from the network is validated, never executed.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


def new_event_id() -> str:
    """128 random bits as hex, like a uuid4 but a few times cheaper (the stage makes ~10 per step)."""
    return os.urandom(16).hex()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


NonNegInt = Annotated[int, Field(ge=0)]


class Event(BaseModel):
    """Fields common to every event; subclasses fix ``schema_name`` and ``version``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    SCHEMA: ClassVar[str] = "event"
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = ""

    schema_name: str = Field(alias="schema")
    version: int
    event_id: str = Field(default_factory=new_event_id, min_length=1)
    run_id: str = Field(min_length=1)
    episode: NonNegInt = 0
    step: NonNegInt = 0
    ts: datetime = Field(default_factory=utc_now)

    def __init__(self, **data: Any) -> None:
        data.setdefault("schema", type(self).SCHEMA)
        data.setdefault("version", type(self).VERSION)
        super().__init__(**data)

    def model_post_init(self, __context: Any) -> None:
        cls = type(self)
        if self.schema_name != cls.SCHEMA:
            raise ValueError(f"schema is {self.schema_name!r}, expected {cls.SCHEMA!r}")
        if self.version != cls.VERSION:
            raise ValueError(f"{cls.SCHEMA} version {self.version} is not supported (expected {cls.VERSION})")

    @property
    def key(self) -> str:
        """Bus key: one run's events share a partition, so their order holds."""
        return self.run_id

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


E = TypeVar("E", bound=Event)


def trusted_event(cls: type[E], values: dict[str, Any]) -> E:
    """An event from complete, already-valid field values (every field, by field name), unvalidated.

    For hot paths that build events from values their own process produced (the stage and the
    in-process registry make ~10 per step); anything read from outside goes through ``decode_event``.
    """
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


class ActionKind(str, Enum):
    SKIP = "skip"
    COPY = "copy"
    DELETE = "delete"


class ActionSubmitted(Event):
    """One agent's decision for one step, as the stage hands it to the registry."""

    SCHEMA: ClassVar[str] = "action"
    TOPIC: ClassVar[str] = "actions"

    agent: str
    agent_index: NonNegInt
    action_index: NonNegInt = Field(description="raw index in the agent's discrete action space")
    kind: ActionKind
    fragment: str | None = None
    source: str | None = Field(default=None, description="node copied from")
    target: str | None = Field(default=None, description="node copied to or deleted from")
    step_size: int = Field(default=1, ge=1, description="how many actions make up this step")


class ActionResult(Event):
    """The registry's verdict on one action; ``code`` follows MDDE's numbering when rejected."""

    SCHEMA: ClassVar[str] = "action-result"
    TOPIC: ClassVar[str] = "action-results"

    action_event_id: str
    agent: str
    agent_index: NonNegInt
    action_index: NonNegInt = 0
    kind: ActionKind
    accepted: bool
    code: int | None = None
    message: str = ""
    conflict: bool = Field(default=False, description="valid at step start, invalidated by an earlier agent")


class ShuffleRequested(Event):
    """Ask the registry service to run its shuffle queue: move the data on the data nodes so they
    hold the allocation (the stage sends it before a real benchmark, and only then)."""

    SCHEMA: ClassVar[str] = "shuffle-request"
    TOPIC: ClassVar[str] = "registry.shuffle-requests"


class ShuffleCompleted(Event):
    """The registry service's answer: how many queued moves ran, or why the shuffle could not run."""

    SCHEMA: ClassVar[str] = "shuffle-result"
    TOPIC: ClassVar[str] = "registry.shuffle-results"

    request_event_id: str
    moves: NonNegInt = 0
    error: str | None = Field(default=None, description="set when the data could not be moved")


class EpisodeStarted(Event):
    """Everything needed to rebuild an episode from its actions: configuration, layout, baseline."""

    SCHEMA: ClassVar[str] = "episode"
    TOPIC: ClassVar[str] = "episodes"

    seed: int | None = None
    scenario: str = "default"
    config: dict[str, Any] = Field(default_factory=dict, description="the environment's configuration, as JSON")
    agents: list[str] = Field(default_factory=list)
    node_ids: list[str] = Field(default_factory=list)
    fragment_ids: list[str] = Field(default_factory=list)
    allocation: dict[str, list[str]] = Field(default_factory=dict, description="node -> fragments at reset")
    baseline_throughput: float | None = None
    baseline_reads: dict[str, dict[str, NonNegInt]] = Field(default_factory=dict)


class StepCompleted(Event):
    """Summary of one environment step: what was accepted and what each agent earned."""

    SCHEMA: ClassVar[str] = "step"
    TOPIC: ClassVar[str] = "steps"

    rewards: dict[str, float]
    actions: dict[str, int] = Field(default_factory=dict, description="raw action index per agent")
    accepted: NonNegInt = 0
    rejected: NonNegInt = 0
    skipped: NonNegInt = 0
    conflicts: NonNegInt = 0
    benchmark: bool = False
    benchmark_mode: str | None = None
    throughput: float | None = None
    node_reads: dict[str, int] = Field(default_factory=dict)
    replicas: dict[str, int] = Field(default_factory=dict, description="replica count per fragment")
    storage: dict[str, int] = Field(default_factory=dict, description="fragments held per node")
    terminated: bool = False
    truncated: bool = False


class RecordLayout(BaseModel):
    """How workload keys map onto the fragmenter's record slots (see ``registry/fragmenter.py``).

    Small enough to travel with every benchmark task, so a worker rebuilds the same key -> slot map
    the registry laid out; absent means slots are keys (contiguous grouping, node numbering).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: int = Field(ge=1, le=4096)
    grouping: Literal["hashed", "contiguous"] = "hashed"
    numbering: list[int] = Field(default_factory=list, description="node of each block of fragment indices; [] = node order")
    seed: int = Field(default=0, ge=0, le=2**63 - 1)


class BenchmarkRequested(Event):
    """Ask for a real or simulated benchmark of the current allocation."""

    SCHEMA: ClassVar[str] = "benchmark-request"
    TOPIC: ClassVar[str] = "benchmark.requests"

    request_id: str = Field(default_factory=new_event_id)
    workload: str = "uniform"
    record_count: int = Field(default=10_000, ge=1)
    operation_count: int = Field(default=100_000, ge=0)
    clients: int = Field(default=50, ge=1)
    seed: int = 0
    tasks: int = Field(default=8, ge=1)
    allocation: dict[str, list[str]] = Field(default_factory=dict)
    data_nodes: dict[str, str] = Field(default_factory=dict, description="node id -> redis URL (default: MDDE_DATA_NODES in node order)")
    node_rates: dict[str, float] = Field(default_factory=dict, description="reads/s each node serves (default: MDDE_BENCHMARK_NODE_RATES)")
    fragment_records: dict[str, tuple[int, int]] = Field(default_factory=dict, description="fragment -> record range [start, end)")
    key_prefix: str = Field(default="user", description="record key prefix on the data nodes")
    record_layout: RecordLayout | None = Field(default=None, description="key -> slot layout of the records (None: identity)")


class BenchmarkTask(Event):
    """One slice of a benchmark run, executed by any worker of the benchmark group."""

    SCHEMA: ClassVar[str] = "benchmark-task"
    TOPIC: ClassVar[str] = "benchmark.tasks"

    request_id: str
    task_index: NonNegInt
    task_count: int = Field(ge=1)
    workload: str
    record_count: int = Field(ge=1)
    operation_offset: NonNegInt
    operation_count: NonNegInt
    operation_total: NonNegInt = Field(default=0, description="reads of the whole run (0: offset + count)")
    clients: int = Field(ge=1)
    seed: int
    allocation: dict[str, list[str]]
    data_nodes: dict[str, str] = Field(default_factory=dict, description="node id -> redis URL")
    node_rates: dict[str, float] = Field(default_factory=dict, description="reads/s each node serves; absent = unpaced")
    fragment_records: dict[str, tuple[int, int]] = Field(default_factory=dict, description="fragment -> record range [start, end)")
    key_prefix: str = Field(default="user", description="record key prefix on the data nodes")
    record_layout: RecordLayout | None = Field(default=None, description="key -> slot layout of the records (None: identity)")

    @property
    def key(self) -> str:
        # Tasks of one run spread over partitions so several workers share them.
        return f"{self.request_id}:{self.task_index}"


class AccessLog(Event):
    """Reads a worker performed for one task, aggregated per node × fragment."""

    SCHEMA: ClassVar[str] = "access-log"
    TOPIC: ClassVar[str] = "benchmark.access-logs"

    request_id: str
    task_index: NonNegInt
    task_count: int = Field(ge=1)
    worker_id: str
    reads: dict[str, dict[str, NonNegInt]]
    operations: NonNegInt
    started_at: datetime
    finished_at: datetime
    duration_s: float = Field(ge=0)
    missing: NonNegInt = Field(default=0, description="reads that found no record on the chosen node")


class BenchmarkResult(Event):
    """The thesis's ⟨τ, N, R⟩: throughput, nodes, reads per fragment per node."""

    SCHEMA: ClassVar[str] = "benchmark-result"
    TOPIC: ClassVar[str] = "benchmark.results"

    request_id: str
    source: Literal["real", "simulated"]
    throughput: float = Field(ge=0)
    reads: dict[str, dict[str, NonNegInt]]
    node_reads: dict[str, NonNegInt]
    operations: NonNegInt
    duration_s: float = Field(ge=0)
    workers: NonNegInt = 0
    missing: NonNegInt = Field(default=0, description="reads that found no record on the chosen node")


class EstimateRequested(Event):
    """Ask the estimator for ⟨τ′, R′⟩ of an allocation given the latest baseline."""

    SCHEMA: ClassVar[str] = "estimate-request"
    TOPIC: ClassVar[str] = "estimator.requests"

    request_id: str = Field(default_factory=new_event_id)
    allocation: dict[str, list[str]]
    baseline_reads: dict[str, dict[str, NonNegInt]]
    baseline_throughput: float = Field(ge=0)
    j: float = 0.0
    k: float = 0.7


class EstimatorResult(Event):
    SCHEMA: ClassVar[str] = "estimator-result"
    TOPIC: ClassVar[str] = "estimator.results"

    request_id: str
    throughput: float = Field(ge=0)
    reads: dict[str, dict[str, NonNegInt]]
    node_reads: dict[str, NonNegInt]
    imbalance_baseline: float
    imbalance_current: float


class Telemetry(Event):
    """Free-form metrics (learner losses, returns, worker counters) with string tags."""

    SCHEMA: ClassVar[str] = "telemetry"
    TOPIC: ClassVar[str] = "telemetry"

    source: str
    metrics: dict[str, float]
    tags: dict[str, str] = Field(default_factory=dict)


class DeadLetter(Event):
    """A message that could not be processed, kept whole with the reason."""

    SCHEMA: ClassVar[str] = "dead-letter"
    TOPIC: ClassVar[str] = "dead-letter"

    reason: str
    error_type: str
    source_topic: str
    source_partition: int | None = None
    source_offset: int | None = None
    consumer: str = ""
    payload_b64: str = Field(description="the raw message value, base64")
    key_b64: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.SCHEMA: cls
    for cls in (
        ActionSubmitted,
        ActionResult,
        ShuffleRequested,
        ShuffleCompleted,
        EpisodeStarted,
        StepCompleted,
        BenchmarkRequested,
        BenchmarkTask,
        AccessLog,
        BenchmarkResult,
        EstimateRequested,
        EstimatorResult,
        Telemetry,
        DeadLetter,
    )
}


class EventDecodeError(ValueError):
    """Raised when bytes from the bus are not a valid event; ``reason`` goes to the dead letter."""

    def __init__(self, reason: str, error_type: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


def decode_event(raw: bytes, expected: tuple[type[Event], ...] | None = None) -> Event:
    """Parse and validate bytes from the bus into the event model named by its ``schema`` field."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError(f"not JSON: {exc}", "invalid-json") from None
    if not isinstance(doc, dict):
        raise EventDecodeError(f"expected a JSON object, got {type(doc).__name__}", "invalid-shape")
    name = doc.get("schema")
    if not isinstance(name, str):
        raise EventDecodeError("missing field 'schema'", "missing-schema")
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise EventDecodeError(f"unknown schema {name!r}", "unknown-schema")
    if expected is not None and cls not in expected:
        names = ", ".join(e.SCHEMA for e in expected)
        raise EventDecodeError(f"schema {name!r} not accepted here (expected {names})", "unexpected-schema")
    if doc.get("version") != cls.VERSION:
        raise EventDecodeError(
            f"{name} version {doc.get('version')!r} is not supported (expected {cls.VERSION})",
            "unsupported-version",
        )
    try:
        return cls.model_validate(doc)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise EventDecodeError(f"{name} failed validation: {errors}", "validation-error") from None
