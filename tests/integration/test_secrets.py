"""Secrets stay secret: a registry Redis with a password, a remote run through the registry service,
then every log line the service wrote and every record on every topic is searched for the password."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from mdde_stream.bus import TopicPartition, open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.env import EnvConfig, MddeParallelEnv
from mdde_stream.policies import RandomValid

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def protected_redis(tmp_path: Path):
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: run scripts/install-system-deps.sh"
    port = free_port()
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--requirepass", PASSWORD, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.RedisError:
            assert time.monotonic() < deadline, "password-protected redis-server did not start"
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def test_no_password_reaches_a_log_or_the_bus(protected_redis: str, tmp_path: Path) -> None:
    kafka = os.environ.get("MDDE_BUS", "")
    assert kafka.startswith("kafka://"), "start the local stack (MDDE_BUS=kafka://...)"
    settings = Settings(bus=kafka, state=protected_redis, data_nodes="", topic_prefix=f"t{uuid.uuid4().hex[:10]}",
                        partitions=2, data_dir=tmp_path)
    with open_bus(settings=settings) as bus:
        ensure_topics(bus, settings)
    log = tmp_path / "service.log"
    service = subprocess.Popen(
        [sys.executable, "-m", "mdde_stream", "service", "registry", "--group", f"g-{uuid.uuid4().hex[:6]}"],
        cwd=ROOT, env={**os.environ, **settings.to_env()}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    env = MddeParallelEnv(EnvConfig(stage="remote", records=1_000, operations=1_000, max_steps=20,
                                    benchmark_frequency=5, publish_events=True, action_timeout_s=60), settings=settings)
    try:
        obs, _ = env.reset(seed=0)
        policy = RandomValid(0)
        while env.agents:
            obs, *_ = env.step(policy.act(obs))
        # an unreachable state URL with a password: the error names the server, not the secret
        with pytest.raises(Exception) as unreachable:
            MddeParallelEnv(EnvConfig(stage="remote", records=1_000),
                            settings=settings.model_copy(update={"state": f"redis://:{PASSWORD}@127.0.0.1:1/0"}))
        assert PASSWORD not in str(unreachable.value)
    finally:
        env.close()
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    text = log.read_text()
    assert "registry service stopped" in text and PASSWORD not in text
    with open_bus(settings=settings) as bus:
        records = 0
        for topic, partitions in bus.list_topics().items():
            if not topic.startswith(settings.topic_prefix + "."):
                continue
            consumer = bus.consumer(f"scan-{uuid.uuid4().hex[:6]}")
            parts = [TopicPartition(topic, p) for p in range(partitions)]
            want = sum(bus.watermarks(tp)[1] - bus.watermarks(tp)[0] for tp in parts)
            consumer.assign(parts)
            seen, deadline = 0, time.monotonic() + 20
            while seen < want and time.monotonic() < deadline:
                for record in consumer.poll(0.5, 5000):
                    seen += 1
                    assert PASSWORD.encode() not in record.value and PASSWORD.encode() not in (record.key or b""), topic
            consumer.close()
            records += seen
        bus.delete_topics([t for t in bus.list_topics() if t.startswith(settings.topic_prefix + ".")])
    assert records > 20 * 4  # the run's actions, verdicts and steps were all searched
