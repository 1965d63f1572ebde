"""Event schemas: every message that crosses the bus is one of these pydantic models.

Each event carries its schema name and version in the payload itself, so a consumer can tell a
stale producer from a corrupt message and route either to the dead-letter topic with a reason.
Payloads are JSON (never pickle): anything read from the network is validated, never executed.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mdde_stream.errors import MddeError


def new_event_id() -> str:
    """128 random bits as hex, like a uuid4 but a few times cheaper (the stage makes ~10 per step)."""
    return os.urandom(16).hex()


def utc_now() -> datetime:
    return datetime.now(UTC)


NonNegInt = Annotated[int, Field(ge=0, le=2**63 - 1)]
"""Counts and offsets: non-negative and within 64 bits (a 10^30 from the network is refused)."""
StepInt = Annotated[int, Field(ge=0, le=10**9)]
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""Run ids name files (reports, exports) and keys: letters, digits and ``._:-``, up to 128."""
RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN)]
Id = Annotated[str, Field(min_length=1, max_length=256)]
"""Event, request, agent, node and fragment ids: bounded so no id can blow up an index or a key."""
MAX_BENCHMARK_OPERATIONS = 10_000_000
"""Reads in one benchmark request (the thesis runs 100,000): bounds what one request can cost."""
MAX_BENCHMARK_TASKS = 1_024
MAX_RECORDS = 10_000_000
MAX_EVENT_BYTES = 512 * 1024
"""Largest record a consumer decodes; a legitimate event of 16 nodes × 200 fragments is ~100 KB."""
MAX_DEAD_LETTER_PAYLOAD = 64 * 1024
"""Bytes of a bad record kept in its dead letter (with its size and hash), so a letter stays far
below the broker's 1 MB message limit whatever arrived."""
MAX_REASON_CHARS = 4_000


def _require_identity(schema: dict[str, Any]) -> None:
    """In the exported JSON Schema, ``schema`` and ``version`` are required: every record on the bus
    names them, although the models fill them in from their class's literals."""
    schema["required"] = ["schema", "version", *[f for f in schema.get("required", []) if f not in ("schema", "version")]]


class Event(BaseModel):
    """Fields common to every event; subclasses fix ``schema_name`` and ``version``."""

    # Floats must be finite: NaN/Infinity are not JSON and no consumer can use them.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False,
                              json_schema_extra=lambda schema, _: _require_identity(schema))

    SCHEMA: ClassVar[str] = "event"
    """Derived from the ``schema_name`` literal each subclass declares (one source of truth)."""
    VERSION: ClassVar[int] = 1
    """Derived from the ``version`` literal each subclass declares."""
    TOPIC: ClassVar[str] = ""

    schema_name: str = Field(alias="schema")
    version: int
    event_id: Id = Field(default_factory=new_event_id)
    run_id: RunId
    episode: StepInt = 0
    step: StepInt = 0
    ts: datetime = Field(default_factory=utc_now)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.SCHEMA = cls.model_fields["schema_name"].default
        cls.VERSION = cls.model_fields["version"].default

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
    values = {"schema_name": cls.SCHEMA, "version": cls.VERSION, **values}
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

    schema_name: Literal["action"] = Field("action", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "actions"

    agent: Id
    agent_index: int = Field(ge=0, le=4096)
    action_index: NonNegInt = Field(description="raw index in the agent's discrete action space")
    kind: ActionKind
    fragment: str | None = None
    source: str | None = Field(default=None, description="node copied from")
    target: str | None = Field(default=None, description="node copied to or deleted from")
    step_size: int = Field(default=1, ge=1, le=4096, description="how many actions make up this step")
    in_process: bool = Field(
        default=False, description="already applied by the stage's own registry (recorded for replay): the "
        "registry service must not apply it again")


class ActionResult(Event):
    """The registry's verdict on one action; ``code`` follows MDDE's numbering when rejected."""

    schema_name: Literal["action-result"] = Field("action-result", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "action-results"

    action_event_id: Id
    agent: Id
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

    schema_name: Literal["shuffle-request"] = Field("shuffle-request", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "registry.shuffle-requests"


class ShuffleCompleted(Event):
    """The registry service's answer: how many queued moves ran, or why the shuffle could not run."""

    schema_name: Literal["shuffle-result"] = Field("shuffle-result", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "registry.shuffle-results"

    request_event_id: str
    moves: NonNegInt = 0
    error: str | None = Field(default=None, description="set when the data could not be moved")


class EpisodeStarted(Event):
    """Everything needed to rebuild an episode from its actions: configuration, layout, baseline."""

    schema_name: Literal["episode"] = Field("episode", alias="schema")
    version: Literal[1] = 1
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

    schema_name: Literal["step"] = Field("step", alias="schema")
    version: Literal[1] = 1
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

    schema_name: Literal["benchmark-request"] = Field("benchmark-request", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "benchmark.requests"

    request_id: Id = Field(default_factory=new_event_id)
    workload: Id = "uniform"
    record_count: int = Field(default=10_000, ge=1, le=MAX_RECORDS)
    operation_count: int = Field(default=100_000, ge=0, le=MAX_BENCHMARK_OPERATIONS)
    clients: int = Field(default=50, ge=1, le=10_000)
    seed: NonNegInt = 0
    tasks: int = Field(default=8, ge=1, le=MAX_BENCHMARK_TASKS)
    allocation: dict[str, list[str]] = Field(default_factory=dict)
    node_rates: dict[str, float] = Field(default_factory=dict, description="reads/s each node serves (default: MDDE_BENCHMARK_NODE_RATES)")
    fragment_records: dict[str, tuple[int, int]] = Field(default_factory=dict, description="fragment -> record range [start, end)")
    key_prefix: str = Field(default="user", description="record key prefix on the data nodes")
    record_layout: RecordLayout | None = Field(default=None, description="key -> slot layout of the records (None: identity)")


class BenchmarkTask(Event):
    """One slice of a benchmark run, executed by any worker of the benchmark group."""

    schema_name: Literal["benchmark-task"] = Field("benchmark-task", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "benchmark.tasks"

    request_id: Id
    task_index: int = Field(ge=0, lt=MAX_BENCHMARK_TASKS)
    task_count: int = Field(ge=1, le=MAX_BENCHMARK_TASKS)
    workload: Id
    record_count: int = Field(ge=1, le=MAX_RECORDS)
    operation_offset: int = Field(ge=0, le=MAX_BENCHMARK_OPERATIONS)
    operation_count: int = Field(ge=0, le=MAX_BENCHMARK_OPERATIONS)
    operation_total: int = Field(default=0, ge=0, le=MAX_BENCHMARK_OPERATIONS,
                                 description="reads of the whole run (0: offset + count)")
    clients: int = Field(ge=1, le=10_000)
    seed: NonNegInt
    allocation: dict[str, list[str]]
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

    schema_name: Literal["access-log"] = Field("access-log", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "benchmark.access-logs"

    request_id: Id
    task_index: int = Field(ge=0, lt=MAX_BENCHMARK_TASKS)
    task_count: int = Field(ge=1, le=MAX_BENCHMARK_TASKS)
    worker_id: Id
    reads: dict[str, dict[str, NonNegInt]]
    operations: NonNegInt
    started_at: datetime
    finished_at: datetime
    duration_s: float = Field(ge=0)
    missing: NonNegInt = Field(default=0, description="reads that found no record on the chosen node")


class BenchmarkResult(Event):
    """The thesis's ⟨τ, N, R⟩: throughput, nodes, reads per fragment per node."""

    schema_name: Literal["benchmark-result"] = Field("benchmark-result", alias="schema")
    version: Literal[1] = 1
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

    schema_name: Literal["estimate-request"] = Field("estimate-request", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "estimator.requests"

    request_id: Id = Field(default_factory=new_event_id)
    allocation: dict[str, list[str]]
    baseline_reads: dict[str, dict[str, NonNegInt]]
    baseline_throughput: float = Field(ge=0, le=1e15)
    j: float = Field(default=0.0, ge=-1e6, le=1e6)
    k: float = Field(default=0.7, ge=-1e6, le=1e6)


class EstimatorResult(Event):
    schema_name: Literal["estimator-result"] = Field("estimator-result", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "estimator.results"

    request_id: str
    throughput: float = Field(ge=0)
    reads: dict[str, dict[str, NonNegInt]]
    node_reads: dict[str, NonNegInt]
    imbalance_baseline: float
    imbalance_current: float


class Telemetry(Event):
    """Free-form metrics (learner losses, returns, worker counters) with string tags."""

    schema_name: Literal["telemetry"] = Field("telemetry", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "telemetry"

    source: str
    metrics: dict[str, float]
    tags: dict[str, str] = Field(default_factory=dict)


class DeadLetter(Event):
    """A message that could not be processed, kept whole with the reason."""

    schema_name: Literal["dead-letter"] = Field("dead-letter", alias="schema")
    version: Literal[1] = 1
    TOPIC: ClassVar[str] = "dead-letter"

    reason: str = Field(max_length=MAX_REASON_CHARS)
    error_type: Id
    source_topic: str
    source_partition: int | None = None
    source_offset: int | None = None
    consumer: str = ""
    payload_b64: str = Field(description="the raw message value, base64 (its first MAX_DEAD_LETTER_PAYLOAD bytes)")
    key_b64: str | None = None
    payload_size: NonNegInt | None = Field(default=None, description="bytes of the whole original value")
    payload_sha256: str | None = Field(default=None, description="hash of the whole original value")
    payload_truncated: bool = False


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


class EventDecodeError(MddeError, ValueError):
    """Raised when bytes from the bus are not a valid event; ``reason`` goes to the dead letter."""

    def __init__(self, reason: str, error_type: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


def decode_event(raw: bytes, expected: tuple[type[Event], ...] | None = None) -> Event:
    """Parse and validate bytes from the bus into the event model named by its ``schema`` field.

    Whatever arrives, the only exception is :class:`EventDecodeError`: too large, too deep, not JSON,
    not an event, not valid — each with its own ``error_type`` for the dead letter.
    """
    if raw is None:
        raise EventDecodeError("empty record (no value)", "invalid-json")
    if len(raw) > MAX_EVENT_BYTES:
        raise EventDecodeError(f"record of {len(raw):,} bytes exceeds the {MAX_EVENT_BYTES:,}-byte limit", "too-large")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError(f"not JSON: {str(exc)[:200]}", "invalid-json") from None
    except RecursionError:
        raise EventDecodeError("JSON nested too deeply to decode", "too-deep") from None
    except (ValueError, TypeError, MemoryError) as exc:  # e.g. an integer literal too long to convert
        raise EventDecodeError(f"not decodable JSON: {type(exc).__name__}: {str(exc)[:200]}", "invalid-json") from None
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
            f"{'.'.join(str(p) for p in err['loc'])[:200] or '<root>'}: {err['msg'][:300]}"
            for err in exc.errors()[:10]
        )
        raise EventDecodeError(f"{name} failed validation: {errors}"[:MAX_REASON_CHARS - 100], "validation-error") from None
    except RecursionError:
        raise EventDecodeError(f"{name}: a field is nested too deeply to validate", "too-deep") from None
