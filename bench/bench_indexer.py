"""Indexer throughput (docs/s) against raw ``helpers.bulk`` of the same documents on the same node.

The raw figure is the ceiling: pre-built documents sent with ``elasticsearch.helpers.bulk``. The
indexer figure includes everything the service does per batch: consuming from the bus, decoding and
validating events, building documents, bulk-indexing and committing offsets. Goal: ratio ≥ 0.5.

    python bench/bench_indexer.py [--steps 2000] [--bus kafka://127.0.0.1:9092] [--es http://127.0.0.1:9200]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from pathlib import Path

from elasticsearch import helpers

from mdde_stream.bus import open_bus
from mdde_stream.config import Settings
from mdde_stream.telemetry.documents import EpisodeBaselines, documents_for
from mdde_stream.telemetry.indexer import Indexer, connect
from mdde_stream.telemetry.sample import publish, sample_run
from mdde_stream.telemetry.templates import delete_indices, delete_templates, ensure_templates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="environment steps (≈ 70 documents each)")
    parser.add_argument("--bus", default="kafka://127.0.0.1:9092")
    parser.add_argument("--es", default="http://127.0.0.1:9200")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:8]
    raw_prefix, idx_prefix = f"bench-raw-{tag}", f"bench-idx-{tag}"
    es = connect(args.es, timeout_s=120)
    runs = max(1, args.steps // 100)
    events = [e for r in range(runs) for e in sample_run(f"bench-{r}", episodes=2, steps=50, seed=r)]
    baselines = EpisodeBaselines()
    actions = [{"_op_type": "index", "_index": d.index_name(raw_prefix), "_id": d.id, "_source": d.source}
               for e in events for d in documents_for(e, baselines)]
    total = len(actions)
    print(f"{len(events)} events -> {total} documents")

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), bus=args.bus, topic_prefix=f"bench{tag}")
        bus = open_bus(settings=settings)
        try:
            for prefix in (raw_prefix, idx_prefix):
                ensure_templates(es, prefix)
            t0 = time.perf_counter()
            ok, errors = helpers.bulk(es, actions, chunk_size=2000, raise_on_error=False)
            raw_rate = ok / (time.perf_counter() - t0)
            assert not errors, errors[:3]

            publish(events, bus, settings)  # not timed: the bus is measured by bench_bus.py
            indexer = Indexer(bus, es, settings, index_prefix=idx_prefix, group_id=f"bench-{tag}")
            indexer.start()
            stop = threading.Event()
            thread = threading.Thread(target=indexer.run, args=(stop,))
            t0 = time.perf_counter()
            thread.start()
            while indexer.stats.documents < total:
                time.sleep(0.01)
            idx_rate = indexer.stats.documents / (time.perf_counter() - t0)
            stop.set()
            thread.join()
            indexer.close()
        finally:
            for prefix in (raw_prefix, idx_prefix):
                delete_indices(es, prefix)
                delete_templates(es, prefix)
            bus.delete_topics([t for t in bus.list_topics() if t.startswith(f"{settings.topic_prefix}.")])
            bus.close()
    print(f"raw helpers.bulk: {raw_rate:,.0f} docs/s")
    print(f"indexer:          {idx_rate:,.0f} docs/s")
    print(f"ratio indexer/raw: {idx_rate / raw_rate:.2f} (goal >= 0.50)")


if __name__ == "__main__":
    main()
