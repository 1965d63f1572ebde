"""Event envelope: every event names its schema and version, and decoding rejects what doesn't fit."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdde_stream.events import (
    ActionKind,
    ActionSubmitted,
    BenchmarkResult,
    EventDecodeError,
    StepCompleted,
    decode_event,
)


def test_round_trip_keeps_every_field() -> None:
    event = StepCompleted(run_id="r1", episode=2, step=5, rewards={"w0": 1.0, "w1": -1.0}, accepted=1, rejected=1)
    back = decode_event(event.to_bytes())
    assert back == event
    assert json.loads(event.to_bytes())["schema"] == "step"
    assert event.key == "r1"


@pytest.mark.parametrize(
    ("mutate", "error_type"),
    [
        (lambda d: d.pop("schema"), "missing-schema"),
        (lambda d: d.update(schema="nope"), "unknown-schema"),
        (lambda d: d.update(version=2), "unsupported-version"),
        (lambda d: d.pop("run_id"), "validation-error"),
        (lambda d: d.update(kind="teleport"), "validation-error"),
        (lambda d: d.update(step=-1), "validation-error"),
        (lambda d: d.update(extra_field=1), "validation-error"),
    ],
)
def test_decode_rejects_with_a_reason(mutate, error_type: str) -> None:
    doc = json.loads(
        ActionSubmitted(run_id="r", agent="w0", agent_index=0, action_index=0, kind=ActionKind.SKIP).to_bytes()
    )
    mutate(doc)
    with pytest.raises(EventDecodeError) as info:
        decode_event(json.dumps(doc).encode())
    assert info.value.error_type == error_type
    assert info.value.reason


def test_decode_can_restrict_accepted_types() -> None:
    raw = BenchmarkResult(
        run_id="r", request_id="q", source="simulated", throughput=1.0, reads={}, node_reads={}, operations=0,
        duration_s=0.0,
    ).to_bytes()
    with pytest.raises(EventDecodeError) as info:
        decode_event(raw, (ActionSubmitted,))
    assert info.value.error_type == "unexpected-schema"


@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoder(raw: bytes) -> None:
    try:
        decode_event(raw)
    except EventDecodeError as exc:
        assert exc.reason


def test_floats_must_be_finite_and_counts_bounded() -> None:
    """NaN/Infinity are not JSON and no consumer can use them; a request may not ask for unbounded work."""
    from mdde_stream.events import BenchmarkRequested, EstimateRequested, EventDecodeError, Telemetry, decode_event

    raw = Telemetry(run_id="r", source="x", metrics={}).to_bytes().replace(b'"metrics":{}', b'"metrics":{"a":Infinity}')
    with pytest.raises(EventDecodeError) as exc:
        decode_event(raw)
    assert exc.value.error_type == "validation-error" and "metrics" in exc.value.reason
    with pytest.raises(ValueError, match="baseline_throughput"):
        EstimateRequested(run_id="r", allocation={}, baseline_reads={}, baseline_throughput=float("inf"))
    for field, value in (("tasks", 100_000), ("record_count", 400_000_000), ("operation_count", 10**9), ("seed", 10**30)):
        with pytest.raises(ValueError, match=field):
            BenchmarkRequested(run_id="r", **{field: value})


@pytest.mark.parametrize("run_id", ["../../somewhere/x", "", "a b", "x" * 200, "/abs"])
def test_run_ids_are_a_safe_character_set(run_id: str) -> None:
    from mdde_stream.env import EnvConfig
    from mdde_stream.events import Telemetry

    with pytest.raises(ValueError, match="run_id"):
        Telemetry(run_id=run_id, source="x", metrics={})
    with pytest.raises(ValueError, match="run_id"):
        EnvConfig(run_id=run_id)
