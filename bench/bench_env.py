"""Environment speed: steps/s with the estimator on the embedded bus, and step latency on Kafka.

    python bench/bench_env.py                      # embedded: env steps/s vs the raw registry loop
    python bench/bench_env.py --remote             # + remote stage on Kafka + Redis (MDDE_BUS / MDDE_STATE, else the
                                                   #   local stack's defaults), against the registry service run
                                                   #   in-process on a fresh topic and key prefix

Actions are pre-sampled from the random-valid policy so the figures are the environment's own cost
(the policy is measured separately). Goals (issue 3): ≥ 5,000 steps/s for 4 × 20 with the estimator
on the embedded bus; p50 ≤ 5 ms per step on Kafka.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mdde_stream.config import Settings
from mdde_stream.env import EnvConfig, MddeParallelEnv
from mdde_stream.policies import RandomValid


def sample_actions(env: MddeParallelEnv, steps: int, seed: int) -> list[dict[str, int]]:
    policy = RandomValid(seed)
    obs, _ = env.reset(seed=seed)
    seq = []
    while env.agents:
        actions = policy.act(obs)
        seq.append(actions)
        obs, *_ = env.step(actions)
    return seq[:steps]


def env_rate(settings: Settings, steps: int, publish: bool, repeats: int,
             **config) -> tuple[float, float, list[float]]:
    """(best steps per wall second, best steps per CPU second, per-step wall latencies)."""
    env = MddeParallelEnv(EnvConfig(max_steps=steps, publish_events=publish, **config), settings=settings)
    try:
        seq = sample_actions(env, steps, seed=1)
        best, best_cpu, latencies = 0.0, 0.0, []
        for _ in range(repeats):
            env.reset(seed=1)
            started, cpu = time.perf_counter(), time.process_time()
            for actions in seq:
                t0 = time.perf_counter()
                env.step(actions)
                latencies.append(time.perf_counter() - t0)
            env.recorder.flush()  # the buffered events are part of the cost
            best = max(best, len(seq) / (time.perf_counter() - started))
            best_cpu = max(best_cpu, len(seq) / (time.process_time() - cpu))
        return best, best_cpu, latencies
    finally:
        env.close()


def registry_rate(settings: Settings, steps: int, repeats: int) -> tuple[float, float]:
    """The reference: only Registry.apply_actions on the same pre-built action events."""
    env = MddeParallelEnv(EnvConfig(max_steps=steps, publish_events=False), settings=settings)
    try:
        seq = sample_actions(env, steps, seed=1)
        env.reset(seed=1)
        events = [env._submissions(np.array([a[x] for x in env.possible_agents]), t + 1) for t, a in enumerate(seq)]
        registry = env._stage.registry
        best, best_cpu = 0.0, 0.0
        for _ in range(repeats):
            registry.reset()
            # fresh event ids each repeat, or the registry would answer from its dedupe memory
            batches = [[e.model_copy(update={"event_id": env._new_id()}) for e in batch] for batch in events]
            started, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                registry.apply_actions(batch)
            best = max(best, len(batches) / (time.perf_counter() - started))
            best_cpu = max(best_cpu, len(batches) / (time.process_time() - cpu))
        return best, best_cpu
    finally:
        env.close()


def policy_rate(settings: Settings, steps: int) -> float:
    env = MddeParallelEnv(EnvConfig(max_steps=steps, publish_events=False), settings=settings)
    try:
        obs, _ = env.reset(seed=0)
        policy = RandomValid(0)
        started = time.perf_counter()
        for _ in range(steps):
            policy.act(obs)
        return steps / (time.perf_counter() - started)
    finally:
        env.close()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--remote", action="store_true", help="also measure the remote stage on Kafka + Redis")
    parser.add_argument("--remote-steps", type=int, default=1000)
    parser.add_argument("--service-poll-ms", type=float, default=200.0,
                        help="registry service poll timeout (its default is 200 ms)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        embedded = Settings(data_dir=Path(tmp), bus="", state="")
        reg, reg_cpu = registry_rate(embedded, args.steps, args.repeats)
        quiet, quiet_cpu, _ = env_rate(embedded, args.steps, publish=False, repeats=args.repeats)
        loud, loud_cpu, lat = env_rate(embedded, args.steps, publish=True, repeats=args.repeats)
        pol = policy_rate(embedded, args.steps)
    # CPU-second rates are what the code costs; wall rates also show what else the machine was doing.
    print(f"4 nodes × 20 fragments, estimator every 5 steps, {args.steps} steps, best of {args.repeats}")
    print("                                            steps/wall-s   steps/CPU-s")
    print(f"  registry apply_actions only (reference) : {reg:>10,.0f}  {reg_cpu:>12,.0f}")
    print(f"  env.step, events off                     : {quiet:>10,.0f}  {quiet_cpu:>12,.0f}")
    print(f"  env.step, events on the embedded bus     : {loud:>10,.0f}  {loud_cpu:>12,.0f}"
          f"   (p50 {pct(lat, 50) * 1e3:.0f} µs, p99 {pct(lat, 99) * 1e3:.0f} µs)")
    print(f"  random-valid policy, 4 agents             : {pol:>10,.0f} decisions/s")

    if args.remote:
        remote_latency(args.remote_steps, args.service_poll_ms)


def remote_latency(steps: int, service_poll_ms: float) -> None:
    """p50/p99 of env.step with the remote stage; the registry service runs in a thread here."""
    import os
    import threading
    import uuid

    from mdde_stream.bus import open_bus
    from mdde_stream.bus.topics import ensure_topics
    from mdde_stream.services.registry import RegistryService, RunRegistries

    bus_url = os.environ.get("MDDE_BUS", "") or "kafka://127.0.0.1:9092"
    state_url = os.environ.get("MDDE_STATE", "") or "redis://127.0.0.1:6379/0"
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        # No data nodes: the round trip of the allocation is measured, and shared nodes stay untouched.
        settings = Settings(bus=bus_url, state=state_url, data_nodes="", topic_prefix=f"bench{tag}", partitions=2,
                            data_dir=Path(tmp))
        prefix = f"bench:{tag}"
        bus = open_bus(settings=settings)
        ensure_topics(bus, settings)
        env = MddeParallelEnv(EnvConfig(stage="remote", registry_prefix=prefix, max_steps=steps,
                                        action_timeout_s=60), settings=settings)
        service = RegistryService(RunRegistries(settings, prefix), bus, settings,
                                  group_id=f"bench-{tag}", poll_timeout_s=service_poll_ms / 1000.0)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            seq = sample_actions(env, steps, seed=1)  # also warms up the service's group membership
            env.reset(seed=1)
            latencies = []
            for actions in seq:
                t0 = time.perf_counter()
                env.step(actions)
                latencies.append(time.perf_counter() - t0)
        finally:
            service.stop()
            thread.join(10)
            env.close()
            bus.delete_topics([s.name for s in ensure_topics(bus, settings)])
            bus.close()
    print(f"remote stage, Kafka {bus_url} + Redis {state_url}, registry service poll timeout {service_poll_ms:g} ms:")
    print(f"  env.step p50 {pct(latencies, 50):.2f} ms, p99 {pct(latencies, 99):.2f} ms over {len(latencies)} steps")


if __name__ == "__main__":
    main()
