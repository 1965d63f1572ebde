"""Re-indexing a recorded episode into the real Elasticsearch of the local stack is idempotent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mdde_stream.bus import open_bus
from mdde_stream.config import Settings
from mdde_stream.replay import Selection, read_episodes
from mdde_stream.replay.reindex import reindex
from mdde_stream.replay.testing import record_episodes
from mdde_stream.telemetry.documents import documents_for
from mdde_stream.telemetry.templates import delete_indices, delete_templates
from tests.conftest import elasticsearch_url

pytestmark = pytest.mark.integration


@pytest.fixture
def es(unique: str) -> Iterator[tuple[object, str]]:
    from elasticsearch import Elasticsearch

    url = elasticsearch_url()
    client = Elasticsearch(url, request_timeout=30)
    try:
        client.cluster.health()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        pytest.fail(f"Elasticsearch at {url} is not reachable ({exc}); start the local stack: `mdde-stream stack up`",
                    pytrace=False)
    prefix = f"replay-{unique}"
    yield client, prefix
    delete_indices(client, prefix)
    delete_templates(client, prefix)
    client.close()


def _count(client: object, prefix: str) -> dict[str, int]:
    indices = client.indices.get(index=f"{prefix}-*")  # type: ignore[attr-defined]
    return {name: client.count(index=name)["count"] for name in sorted(indices)}  # type: ignore[attr-defined]


def test_reindex_twice_gives_the_same_documents(embedded_settings: Settings, es: tuple[object, str]) -> None:
    client, prefix = es
    settings = embedded_settings
    run_id = record_episodes(settings, episodes=1, steps=10, seed=7).run_id
    with open_bus(settings=settings) as bus:
        [episode] = read_episodes(bus, Selection(run_id=run_id, episode=0), settings)
    url = elasticsearch_url()
    first = reindex(episode.events, url, settings, index_prefix=prefix)
    counts = _count(client, prefix)
    expected = sum(len(documents_for(r.event)) for r in episode.events)
    assert first.documents == expected > 0
    assert sum(counts.values()) == expected
    assert any("-steps-" in name for name in counts) and any("-actions-" in name for name in counts)

    second = reindex(episode.events, url, settings, index_prefix=prefix)
    assert second.documents == first.documents
    assert _count(client, prefix) == counts  # overwritten, not duplicated
    steps = client.count(index=f"{prefix}-steps-*", query={"term": {"run_id": run_id}})  # type: ignore[attr-defined]
    assert steps["count"] == 10
