"""The local stack's real servers answer and behave as the project needs.

Runs against an already-running stack (`mdde-stream stack up` before pytest). A service that is
down fails these tests with the command to start it: real-service tests never skip.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from mdde_stream.config import Settings, get_settings
from mdde_stream.stack import stack_env, stack_status

pytestmark = pytest.mark.integration

START_HINT = "start it with `mdde-stream stack up` (or `python -m mdde_stream.stack up`)"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def status(settings: Settings) -> dict[str, dict[str, Any]]:
    return stack_status(settings)


def _require(status: dict[str, dict[str, Any]], group: str) -> None:
    rows = {name: row for name, row in status.items() if row["group"] == group}
    down = {name: row["state"] for name, row in rows.items() if row["state"] != "up"}
    if not rows or down:
        pytest.fail(f"local stack {group} is not running ({down or 'no services'}); {START_HINT}")


@pytest.fixture(scope="session")
def redis_clients(settings: Settings, status: dict[str, dict[str, Any]]) -> Iterator[dict[str, redis.Redis]]:
    _require(status, "redis")
    env = stack_env(settings)
    urls = {"registry": env["MDDE_STATE"]}
    urls |= {f"data-{i}": url for i, url in enumerate(env["MDDE_DATA_NODES"].split(","))}
    clients = {name: redis.Redis.from_url(url, socket_timeout=5) for name, url in urls.items()}
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings, status: dict[str, dict[str, Any]]) -> str:
    _require(status, "kafka")
    return stack_env(settings)["MDDE_BUS"].removeprefix("kafka://")


@pytest.fixture(scope="session")
def es(settings: Settings, status: dict[str, dict[str, Any]]) -> Iterator[Any]:
    _require(status, "elasticsearch")
    from elasticsearch import Elasticsearch

    client = Elasticsearch(stack_env(settings)["MDDE_ELASTICSEARCH"], request_timeout=30)
    yield client
    client.close()


def test_status_lists_every_service_up_with_its_own_pid(settings: Settings, status: dict[str, dict[str, Any]]) -> None:
    for group in ("redis", "kafka", "elasticsearch"):
        _require(status, group)
    expected = 1 + settings.stack_data_nodes + 2
    configured = {row["port"] for row in status.values()}
    assert len(status) >= expected
    assert len({row["pid"] for row in status.values()}) == len(status), "two services share a pid"
    assert {settings.redis_registry_port, settings.kafka_port, settings.elasticsearch_port} <= configured


def test_redis_registry_and_data_nodes_are_separate_servers(redis_clients: dict[str, redis.Redis]) -> None:
    assert len(redis_clients) >= 2
    run_ids = {name: client.info("server")["run_id"] for name, client in redis_clients.items()}
    assert len(set(run_ids.values())) == len(run_ids), f"servers share a run_id: {run_ids}"
    for name, client in redis_clients.items():
        key = f"mdde-test:{uuid.uuid4().hex}"
        client.set(key, name, ex=60)
        try:
            assert client.get(key) == name.encode()
            others = [other for other_name, other in redis_clients.items() if other_name != name]
            assert all(other.exists(key) == 0 for other in others), f"key written on {name} visible elsewhere"
        finally:
            client.delete(key)


def test_only_the_registry_redis_persists_and_every_server_is_local(redis_clients: dict[str, redis.Redis]) -> None:
    """The registry's state survives a restart (append-only file, fsync every second); the data nodes hold
    generated records the registry reloads, so they keep nothing on disk."""
    for name, client in redis_clients.items():
        config = (client.config_get("save") | client.config_get("appendonly") | client.config_get("bind")
                  | client.config_get("appendfsync"))
        assert config["save"] == "", f"{name} persists RDB snapshots"
        if name == "registry":
            assert (config["appendonly"], config["appendfsync"]) == ("yes", "everysec"), f"{name}: {config}"
        else:
            assert config["appendonly"] == "no", f"{name} writes an AOF"
        assert config["bind"] == "127.0.0.1", f"{name} listens beyond localhost"


def test_kafka_topic_with_partitions_produce_and_consume(kafka_bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topic = f"mdde-test-{uuid.uuid4().hex}"
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
    try:
        metadata = admin.list_topics(topic=topic, timeout=10)
        assert len(metadata.topics[topic].partitions) == 3

        payload = uuid.uuid4().hex.encode()
        delivered: list[tuple[int, int]] = []

        def on_delivery(err: Any, msg: Any) -> None:
            assert err is None, f"delivery failed: {err}"
            delivered.append((msg.partition(), msg.offset()))

        producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
        producer.produce(topic, key=b"run-1", value=payload, partition=2, on_delivery=on_delivery)
        assert producer.flush(30) == 0
        assert delivered == [(2, 0)]

        consumer = Consumer({
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"mdde-test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        })
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + 30
            message = None
            while message is None and time.monotonic() < deadline:
                candidate = consumer.poll(1.0)
                if candidate is not None and candidate.error() is None:
                    message = candidate
            assert message is not None, "no message consumed within 30 s"
            assert (message.key(), message.value(), message.partition()) == (b"run-1", payload, 2)
            consumer.commit(message=message, asynchronous=False)
        finally:
            consumer.close()
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)


def test_kafka_does_not_create_topics_automatically(kafka_bootstrap: str) -> None:
    topic = f"mdde-test-missing-{uuid.uuid4().hex}"
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "message.timeout.ms": 2000})
    errors: list[str] = []
    producer.produce(topic, value=b"x", on_delivery=lambda err, _msg: errors.append(str(err)) if err else None)
    producer.flush(10)
    assert errors, "producing to a missing topic succeeded"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert topic not in admin.list_topics(timeout=10).topics


def _index_docs(index: str, count: int) -> Iterator[dict[str, Any]]:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i in range(count):
        yield {
            "_index": index,
            "_id": f"doc-{i}",
            "_source": {
                "ts": (base + dt.timedelta(hours=i % 10, minutes=i % 60)).isoformat(),
                "agent": f"agent-{i % 4}",
                "reward": float(i % 7),
                "step": i,
            },
        }


def test_elasticsearch_runs_the_pinned_version_matching_the_client(es: Any, settings: Settings) -> None:
    import elasticsearch

    from mdde_stream.stack.elasticsearch_node import es_version
    from mdde_stream.stack.manager import build_services

    [service] = build_services(settings, ["elasticsearch"])
    assert service.outdated() is None, "`stack up` would restart the running node"

    [node] = es.nodes.info(metric="jvm")["nodes"].values()
    assert node["version"] == es_version(), "the running node is not the one compose/local/es-pom.xml names"
    assert int(node["version"].split(".")[0]) == elasticsearch.__version__[0], "client and server majors differ"
    assert int(node["jvm"]["version"].split(".")[0]) >= 21
    [plugins] = es.nodes.info(metric="plugins")["nodes"].values()
    assert "transport-netty4" in {module["name"] for module in plugins["modules"]}


def test_elasticsearch_template_bulk_and_aggregations(es: Any) -> None:
    from elasticsearch import helpers

    suffix = uuid.uuid4().hex[:12]
    template, index = f"mdde-test-{suffix}", f"mdde-test-{suffix}-steps"
    es.indices.put_index_template(
        name=template,
        index_patterns=[f"mdde-test-{suffix}-*"],
        template={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {
                "ts": {"type": "date"}, "agent": {"type": "keyword"},
                "reward": {"type": "float"}, "step": {"type": "long"},
            }},
        },
    )
    try:
        indexed, errors = helpers.bulk(es, _index_docs(index, 1000), refresh="wait_for")
        assert (indexed, errors) == (1000, [])
        mapping = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        assert mapping["agent"]["type"] == "keyword", "the index template was not applied"

        result = es.search(index=index, size=0, aggs={
            "agents": {"terms": {"field": "agent"}, "aggs": {"mean_reward": {"avg": {"field": "reward"}}}},
            "hourly": {"date_histogram": {"field": "ts", "fixed_interval": "1h"}},
            "reward_sum": {"sum": {"field": "reward"}},
            "last_step": {"max": {"field": "step"}},
            "pages": {"composite": {"size": 2, "sources": [{"agent": {"terms": {"field": "agent"}}}]}},
        })
        aggs = result["aggregations"]
        assert result["hits"]["total"]["value"] == 1000
        assert {b["key"]: b["doc_count"] for b in aggs["agents"]["buckets"]} == {f"agent-{i}": 250 for i in range(4)}
        assert [b["doc_count"] for b in aggs["hourly"]["buckets"]] == [100] * 10
        assert aggs["reward_sum"]["value"] == sum(float(i % 7) for i in range(1000))
        assert aggs["last_step"]["value"] == 999
        assert [b["key"]["agent"] for b in aggs["pages"]["buckets"]] == ["agent-0", "agent-1"]
        assert aggs["pages"]["after_key"] == {"agent": "agent-1"}

        # Re-sending the same ids overwrites (what the indexer's idempotence rests on); deleting by
        # id works without the reindex module that delete-by-query needs.
        again, _ = helpers.bulk(es, _index_docs(index, 1000), refresh="wait_for")
        assert again == 1000 and es.count(index=index)["count"] == 1000
        hits = es.search(index=index, query={"term": {"agent": "agent-0"}}, size=1000, _source=False)["hits"]["hits"]
        gone, _ = helpers.bulk(es, ({"_op_type": "delete", "_index": index, "_id": h["_id"]} for h in hits),
                               refresh="wait_for")
        assert gone == 250
        assert es.count(index=index)["count"] == 750
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.indices.delete_index_template(name=template)


def test_stack_env_points_at_the_running_services(settings: Settings, status: dict[str, dict[str, Any]]) -> None:
    env = stack_env(settings)
    urls = {row["url"] for row in status.values() if row["state"] == "up"}
    assert env["MDDE_BUS"] in urls
    assert env["MDDE_STATE"] in urls
    assert env["MDDE_ELASTICSEARCH"] in urls
    data_nodes = env["MDDE_DATA_NODES"].split(",")
    assert len(data_nodes) == settings.stack_data_nodes
    assert set(data_nodes) <= urls
