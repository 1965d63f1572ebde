"""compose/docker-compose.yml cannot run here (no Docker engine), so check what a `config` would."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from typer.testing import CliRunner

from mdde_stream.cli import app

COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_every_dependency_names_a_service(compose: dict) -> None:
    services = compose["services"]
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        deps = svc.get("depends_on", {})
        for dep, cond in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy but it has no healthcheck"


def test_the_stack_holds_every_part(compose: dict) -> None:
    services = compose["services"]
    for needed in ("kafka", "redis-registry", "elasticsearch", "kibana", "registry", "indexer", "benchmark-worker"):
        assert needed in services
    data_nodes = [n for n in services if n.startswith("redis-data-")]
    assert len(data_nodes) >= 2
    for infra in ["kafka", "redis-registry", "elasticsearch", "kibana", *data_nodes]:
        assert "healthcheck" in services[infra], infra


def test_benchmark_workers_can_be_scaled(compose: dict) -> None:
    worker = compose["services"]["benchmark-worker"]
    assert "container_name" not in worker, "a fixed container name prevents --scale"
    assert not worker.get("ports"), "host ports would clash between scaled workers"


def test_actors_scale_into_the_trainers_replay_memory(compose: dict) -> None:
    services = compose["services"]
    trainer, actor = services["trainer"]["command"], services["actor"]["command"]
    assert "container_name" not in services["actor"] and not services["actor"].get("ports")
    prefix = trainer[trainer.index("--prefix") + 1]
    assert actor[actor.index("--prefix") + 1] == prefix
    assert "--id" not in actor, "replicas claim their own index; a fixed one would repeat seeds"
    waits_for = int(trainer[trainer.index("--external-actors") + 1])
    assert services["actor"]["deploy"]["replicas"] >= waits_for


def test_service_urls_point_at_services(compose: dict) -> None:
    services = compose["services"]
    env = services["registry"]["environment"]
    urls = [env["MDDE_BUS"], env["MDDE_STATE"], env["MDDE_ELASTICSEARCH"], *env["MDDE_DATA_NODES"].split(",")]
    for url in urls:
        host = urlparse(url).hostname
        assert host in services, f"{url} points at {host}, which is not a service"


def test_project_services_run_real_cli_commands(compose: dict) -> None:
    runner = CliRunner()
    for name, svc in compose["services"].items():
        command = svc.get("command")
        if svc.get("image") != "mdde-stream:local" or not command:
            continue
        words = [w for w in command if not w.startswith("-")]
        path = words[:2] if len(words) > 1 and words[0] in ("service", "worker", "topics", "dashboards") else words[:1]
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"service {name}: `mdde-stream {' '.join(path)}` is not a command\n{result.output}"


def test_elasticsearch_and_kibana_run_the_local_stacks_version(compose: dict) -> None:
    from mdde_stream.stack.elasticsearch_node import es_version
    from mdde_stream.telemetry.dashboards import KIBANA_VERSION

    services = compose["services"]
    es_image, kibana_image = services["elasticsearch"]["image"], services["kibana"]["image"]
    assert es_image == f"docker.elastic.co/elasticsearch/elasticsearch:{es_version()}"
    assert kibana_image == f"docker.elastic.co/kibana/kibana:{KIBANA_VERSION}"
    assert KIBANA_VERSION == es_version(), "the saved objects are written for another Kibana than compose runs"
