"""The HTML run report in a real headless Chromium: loads with no console errors and shows the plots.

The events come from the bus like in production (Kafka, and the embedded log), written by the
event models; the report reads them back by run id.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mdde_stream.bus import open_bus
from mdde_stream.config import Settings
from mdde_stream.telemetry.panels import PANELS
from mdde_stream.telemetry.report import write_report
from mdde_stream.telemetry.sample import publish, sample_run
from tests.conftest import require_kafka

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (apt-get install chromium)", pytrace=False)
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(params=["kafka", "embedded"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, unique: str):  # type: ignore[no-untyped-def]
    bus = require_kafka() if request.param == "kafka" else ""
    s = Settings(data_dir=tmp_path, bus=bus, topic_prefix=f"t{unique}")
    yield s
    with open_bus(settings=s) as b:
        b.delete_topics([t for t in b.list_topics() if t.startswith(f"{s.topic_prefix}.")])


def test_report_renders_every_panel_without_console_errors(settings: Settings, tmp_path: Path) -> None:
    with open_bus(settings=settings) as bus:
        publish(sample_run("report-run", episodes=2, steps=6, seed=5), bus, settings)
        publish(sample_run("someone-else", episodes=1, steps=2, seed=6), bus, settings)
    out = write_report("report-run", settings, tmp_path / "report.html")
    html = out.read_text()
    assert "http://" not in html and "https://" not in html, "the report must not load anything"
    assert "someone-else" not in html

    dom = chromium(tmp_path, "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="1"' in dom.stdout, "the report's script did not run to the end"
    charts = int(re.search(r'data-charts="(\d+)"', dom.stdout).group(1))  # type: ignore[union-attr]
    assert charts >= len(PANELS)
    assert dom.stdout.count("<polyline") >= 10 and dom.stdout.count('class="cell"') >= 50
    for panel in PANELS:
        section = dom.stdout.split(f'id="panel-{panel.id}"', 1)[1].split("</section>", 1)[0]
        assert "<svg" in section and "no data" not in section, f"panel {panel.id} shows no plot"

    logged = chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", out.as_uri())
    console = [line for line in logged.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console

    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", out.as_uri())
    assert shot.is_file() and shot.stat().st_size > 20_000
