"""The query behind every dashboard panel returns data from a real Elasticsearch after a short run,
and the same numbers the HTML report computes in memory (both views must tell the same truth)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdde_stream.telemetry.dashboards import kind_of_data_view, leaf_values, load_ndjson, visstate_query
from mdde_stream.telemetry.documents import documents_by_kind
from mdde_stream.telemetry.panels import PANELS
from mdde_stream.telemetry.report import evaluate
from mdde_stream.telemetry.sample import publish, sample_run
from tests.integration.telemetry_fixtures import (
    RunningIndexer,
    TelemetryEnv,
    expected_documents,
    telemetry_env,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def env(tmp_path: Path, unique: str) -> Iterator[TelemetryEnv]:
    yield from telemetry_env(tmp_path, unique)


def _flatten(series: dict) -> list[float]:
    return [v for groups in series.values() for xs in groups.values() for v in xs.values()]


def test_every_panel_query_returns_the_reports_numbers(env: TelemetryEnv) -> None:
    events = sample_run("dash", episodes=2, steps=6, seed=7)
    noise = sample_run("other-run", episodes=1, steps=3, seed=8)  # filtered out by run_id
    publish([*events, *noise], env.bus, env.settings)
    total = expected_documents(events) + expected_documents(noise)
    with RunningIndexer(env):
        wait_for(lambda: env.count() >= total, 60, f"{total} documents")
    env.es.indices.refresh(index=f"{env.prefix}-*")

    objects = load_ndjson()
    views = {o["id"]: o for o in objects if o["type"] == "index-pattern"}
    panels = {f"mdde-vis-{p.id}": p for p in PANELS}
    docs = documents_by_kind(events)
    checked = 0
    for vis in (o for o in objects if o["type"] == "visualization"):
        view = views[vis["references"][0]["id"]]
        kind = kind_of_data_view(view)
        index = view["attributes"]["title"].replace("mdde-", f"{env.prefix}-", 1)
        state = json.loads(vis["attributes"]["visState"])
        body = visstate_query(state, query={"term": {"run_id": "dash"}})
        response = env.es.search(index=index, **body)
        values = leaf_values(state, response)
        assert values, f"{vis['id']} ({kind}) returned no data"
        panel = panels[vis["id"]]
        expected = evaluate(panel.__class__(**{**panel.__dict__, "chart": "line"}), docs[panel.kind])
        assert sorted(values) == pytest.approx(sorted(_flatten(expected))), vis["id"]
        checked += 1
    assert checked == len(PANELS)
