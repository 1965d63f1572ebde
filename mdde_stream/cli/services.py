"""``mdde-stream service ...`` and ``mdde-stream worker benchmark``: the long-running consumers.

Each command checks its options, then builds its service from :mod:`mdde_stream.services` and hands
it to :func:`~mdde_stream.services.runtime.serve`, which owns the bus, the topics and the signals.
The ``consumers/`` entry points call these commands, so every way to start a service takes the same
options.
"""

from __future__ import annotations

import typer

from mdde_stream.cli.checks import fail, positive, require_extra
from mdde_stream.config import get_settings
from mdde_stream.registry import SERVICE_REGISTRY_PREFIX

service_app = typer.Typer(help="Long-running consumers of the pipeline.", no_args_is_help=True)
worker_app = typer.Typer(help="Horizontally scalable workers (run several in one group).", no_args_is_help=True)

RECORD_SHAPES = ("default", "large")


@service_app.command("registry")
def registry(
    prefix: str = typer.Option(SERVICE_REGISTRY_PREFIX, "--prefix",
                               help="Root Redis key prefix: each run's state lives under <prefix>:run:<run id>."),
    group: str = typer.Option("mdde-registry", "--group", help="Consumer group."),
    max_records: int = typer.Option(500, "--max-records", min=1, help="Actions per poll (per produce/commit cycle)."),
    step_timeout: float = typer.Option(30.0, "--step-timeout", help="Apply an incomplete step after this long (s)."),
    record_shape: str = typer.Option("default", "--record-shape",
                                     help="Record preset on the data nodes: default | large (thesis Appendix C)."),
    no_data: bool = typer.Option(False, "--no-data",
                                 help="Ignore MDDE_DATA_NODES: keep the allocation only (estimate / simulated)."),
) -> None:
    """Apply agents' actions from mdde.actions to each run's allocation state, and move data on request."""
    from mdde_stream.services.registry import RegistryService, RunRegistries
    from mdde_stream.services.runtime import serve

    positive(step_timeout, "--step-timeout")
    if record_shape not in RECORD_SHAPES:
        fail(f"--record-shape {record_shape!r}: choose from {', '.join(RECORD_SHAPES)}")
    settings = get_settings()
    if no_data:
        settings = settings.model_copy(update={"data_nodes": ""})
    registries = RunRegistries(settings, prefix, record_shape)
    raise typer.Exit(serve(lambda bus, s: RegistryService(registries, bus, s, group_id=group,
                                                          step_timeout_s=step_timeout, max_records=max_records),
                           settings))


@service_app.command("estimator")
def estimator(group: str = typer.Option("mdde-estimator", "--group", help="Consumer group.")) -> None:
    """Answer estimate requests with the thesis's estimator (stateless: run as many as you like)."""
    from mdde_stream.services.estimator import EstimatorService
    from mdde_stream.services.runtime import serve

    raise typer.Exit(serve(lambda bus, settings: EstimatorService(bus, settings, group)))


@service_app.command("benchmark-aggregator")
def benchmark_aggregator(
    group: str = typer.Option("mdde-benchmark-aggregator", "--group", help="Consumer group."),
) -> None:
    """Plan benchmark requests into tasks and combine the workers' access logs into results."""
    from mdde_stream.services.benchmark_aggregator import AggregatorService
    from mdde_stream.services.runtime import serve

    raise typer.Exit(serve(lambda bus, settings: AggregatorService(bus, settings, group)))


@service_app.command("indexer")
def indexer(
    elasticsearch: str = typer.Option(None, "--elasticsearch", help="Elasticsearch URL (default: MDDE_ELASTICSEARCH)."),
    bus: str = typer.Option(None, "--bus", help="Bus URL (default: MDDE_BUS)."),
    index_prefix: str = typer.Option(None, "--index-prefix", help="Index name prefix (default: from MDDE_TOPIC_PREFIX)."),
    group: str = typer.Option(None, "--group", help="Consumer group (default: <index prefix>-indexer)."),
    retention_days: int = typer.Option(None, "--retention-days", min=1,
                                       help="Delete dated indices older than this many days (default: keep all)."),
    max_records: int = typer.Option(5000, "--max-records", min=1, help="Events per bulk batch."),
) -> None:
    """Bulk-index telemetry events into Elasticsearch; several in one group share the partitions."""
    require_extra("elasticsearch", "telemetry", "service indexer")
    from mdde_stream.services.indexer import IndexerService
    from mdde_stream.services.runtime import serve
    from mdde_stream.telemetry.indexer import Indexer, connect

    settings = get_settings()
    if bus is not None:
        settings = settings.model_copy(update={"bus": bus})
    url = elasticsearch or settings.elasticsearch
    if not url:
        fail("--elasticsearch: no Elasticsearch URL (pass --elasticsearch or set MDDE_ELASTICSEARCH)")
    try:
        es = connect(url, settings=settings)
    except ValueError as exc:  # a bad URL, credential or CA setting
        fail(f"--elasticsearch: {exc}")
    raise typer.Exit(serve(lambda b, s: IndexerService(Indexer(
        b, es, s, index_prefix=index_prefix, group_id=group, max_records=max_records,
        retention_days=retention_days)), settings))


@worker_app.command("benchmark")
def benchmark_worker(
    group: str = typer.Option("mdde-benchmark-workers", "--group", help="Consumer group shared by all workers."),
    clients: int = typer.Option(None, "--clients", min=1, help="Concurrent clients per task (default: the request's)."),
    worker_id: str = typer.Option(None, "--worker-id", help="Name in access logs (default: host-pid)."),
    retries: int = typer.Option(2, "--retries", min=0, help="Re-runs of a task whose reads failed."),
) -> None:
    """Execute benchmark tasks against the Redis data nodes; start several to scale out."""
    from mdde_stream.services.benchmark_worker import BenchmarkWorker
    from mdde_stream.services.runtime import serve

    raise typer.Exit(serve(lambda bus, settings: BenchmarkWorker(bus, settings, group, worker_id, clients, retries)))
