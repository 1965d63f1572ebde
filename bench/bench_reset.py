"""Reset time vs dataset size and vs number of changes, as a fraction of a full re-setup.

A full re-setup (wipe + generate + load every record + snapshot) grows with the dataset; a reset
should grow only with what the episode changed: it restores the allocation bits (W×F, tiny) and
moves the records of the changed (node, fragment) cells only. Runs on the state and data nodes of
the settings (``MDDE_STATE``, ``MDDE_DATA_NODES``), under a unique key prefix it removes afterwards.

    python bench/bench_reset.py --sizes 1000 10000 100000 --changes 0 1 4 16
"""

from __future__ import annotations

import argparse
import random
import time
import uuid

from mdde_stream.config import get_settings
from mdde_stream.datanodes import DataNodes, RecordSpec
from mdde_stream.events import ActionKind, ActionSubmitted
from mdde_stream.registry import Registry, open_registry
from mdde_stream.registry.redis_store import RedisStore
from mdde_stream.registry.testing import DEFAULT_STATE, data_node_urls


def make_changes(reg: Registry, count: int, rng: random.Random) -> int:
    """Apply ``count`` accepted copies/deletes (each one changed cell) and shuffle them onto the nodes."""
    done, step = 0, 0
    while done < count:
        m = reg.allocation()
        f = rng.randrange(len(reg.fragment_ids))
        holders = [w for w in range(len(reg.node_ids)) if m[w, f]]
        others = [w for w in range(len(reg.node_ids)) if not m[w, f]]
        if others and (len(holders) == 1 or rng.random() < 0.5):
            kind, src, tgt = ActionKind.COPY, reg.node_ids[rng.choice(holders)], reg.node_ids[rng.choice(others)]
        else:
            kind, src, tgt = ActionKind.DELETE, None, reg.node_ids[rng.choice(holders)]
        a = ActionSubmitted(run_id="bench", step=step, agent=tgt, agent_index=0, action_index=0, kind=kind,
                            fragment=reg.fragment_ids[f], source=src, target=tgt)
        done += reg.apply_actions([a])[0].accepted
        step += 1
    return reg.shuffle()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    p.add_argument("--changes", type=int, nargs="+", default=[0, 1, 4, 16])
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--fragments", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    settings = get_settings()
    if not settings.state.startswith("redis"):
        settings = settings.model_copy(update={"state": DEFAULT_STATE})
    urls = data_node_urls()[: args.nodes]
    rng = random.Random(0)
    print(f"state {settings.state}, data nodes {urls}")
    print(f"{'records':>8} {'setup s':>8} {'changes':>7} {'reset ms':>9} {'cells':>5} {'reset/setup':>11}")
    for size in args.sizes:
        spec = RecordSpec(record_count=size, key_prefix=f"bench{uuid.uuid4().hex[:8]}:user")
        nodes = DataNodes({f"n{i}": u for i, u in enumerate(urls)}, spec)
        prefix = f"bench:{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        reg = open_registry(settings, args.nodes, args.fragments, size, data_nodes=nodes, prefix=prefix)
        setup_s = time.perf_counter() - t0
        try:
            for changes in args.changes:
                times, cells = [], 0
                for _ in range(args.repeat):
                    make_changes(reg, changes, rng)
                    t0 = time.perf_counter()
                    cells = reg.reset()
                    times.append(time.perf_counter() - t0)
                best = min(times)
                print(f"{size:>8} {setup_s:>8.2f} {changes:>7} {best * 1e3:>9.2f} {cells:>5} {best / setup_s:>11.4f}")
            bad = nodes.mismatches(reg.allocation(), reg.node_ids, reg.store.fragment_records(), reg.fragment_ids)
            assert not bad, f"data nodes differ from the snapshot after reset: {bad[:3]}"
        finally:
            for node in nodes.clients:
                nodes.delete_range(node, 0, size)
            if isinstance(reg.store, RedisStore):
                reg.store.wipe()
            reg.close()


if __name__ == "__main__":
    main()
