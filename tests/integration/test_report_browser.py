"""The HTML run report in a real headless Chromium: loads with no console errors and shows the plots.

The events come from the bus like in production (Kafka, and the embedded log), written by the
event models; the report reads them back by run id. Vega renders asynchronously, so Chromium runs
with a virtual-time budget and the page marks ``data-ready`` once every chart is drawn; Vega's SVG
carries ARIA labels (axis titles, marks), which is what the assertions read.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mdde_stream.bus import open_bus
from mdde_stream.config import Settings
from mdde_stream.events import AccessLog, BenchmarkResult
from mdde_stream.telemetry.documents import documents_by_kind
from mdde_stream.telemetry.panels import PANELS
from mdde_stream.telemetry.report import panel_rows, write_report
from mdde_stream.telemetry.sample import publish, sample_run
from tests.conftest import require_kafka

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=30000"]
SHOTS = Path(__file__).resolve().parents[2] / ".pytest-shots"


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


def section(dom: str, panel_id: str) -> str:
    return dom.split(f'id="panel-{panel_id}"', 1)[1].split("</section>", 1)[0]


def test_report_renders_every_panel_without_console_errors(settings: Settings, tmp_path: Path) -> None:
    with open_bus(settings=settings) as bus:
        publish(sample_run("report-run", episodes=2, steps=6, seed=5), bus, settings)
        publish(sample_run("someone-else", episodes=1, steps=2, seed=6), bus, settings)
    out = write_report("report-run", settings, tmp_path / "report.html")
    html = out.read_text()
    assert "someone-else" not in html
    assert not re.search(r"""(src|href)=["']?https?:""", html), "the report must not load anything"

    dom = chromium(tmp_path, "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="1"' in dom.stdout, re.findall(r'data-error="[^"]*"', dom.stdout) or "the script did not finish"
    charts = int(re.search(r'data-charts="(\d+)"', dom.stdout).group(1))  # type: ignore[union-attr]
    assert charts == len(PANELS)
    for panel in PANELS:
        body = section(dom.stdout, panel.id)
        assert "<svg" in body and "No data:" not in body, f"panel {panel.id} shows no plot"
        assert re.search(r"<p class=\"empty episode-empty\" hidden[^>]*>", body), f"panel {panel.id} claims no data"
        y_title = re.search(r"aria-label=\"Y-axis titled '([^']*)'", body)
        assert y_title, f"panel {panel.id} has no titled value axis"
        if panel.chart == "heatmap":  # the colour scale is the legend with the value's unit
            assert re.search(rf"aria-label=\"Gradient legend titled '[a-z]+ {re.escape(panel.unit)}'", body), panel.id
        else:
            assert panel.unit in y_title.group(1) or panel.unit in ("reward", "workers"), (panel.id, y_title.group(1))
    assert section(dom.stdout, "throughput").count("reads/s") >= 1
    assert "share of actions (%)" in section(dom.stdout, "action-outcomes")

    logged = chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", out.as_uri())
    console = [line for line in logged.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console

    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", out.as_uri())
    assert shot.is_file() and shot.stat().st_size > 100_000
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(shot, SHOTS / f"report-{'kafka' if settings.bus else 'embedded'}.png")  # to look at


def test_episode_selector_filters_every_chart(tmp_path: Path, unique: str) -> None:
    settings = Settings(data_dir=tmp_path, bus="", topic_prefix=f"t{unique}")
    with open_bus(settings=settings) as bus:
        publish(sample_run("episodes", episodes=3, steps=4, seed=2), bus, settings)
    out = write_report("episodes", settings, tmp_path / "report.html")
    every = chromium(tmp_path, "--dump-dom", out.as_uri()).stdout
    one = chromium(tmp_path, "--dump-dom", out.as_uri() + "#episode=1").stdout
    assert 'data-episode="all"' in every and 'data-episode="1"' in one and 'data-ready="1"' in one
    bars = 'aria-roledescription="bar"'
    assert section(every, "episode-returns").count(bars) == 3 * 4  # episodes × agents
    assert section(one, "episode-returns").count(bars) == 4
    assert "episode 1" in one and "all episodes" in one


def test_empty_panels_say_why(tmp_path: Path, unique: str) -> None:
    """An estimator-only run (no benchmark results, no worker access logs) leaves panels empty."""
    settings = Settings(data_dir=tmp_path, bus="", topic_prefix=f"t{unique}")
    events = [e for e in sample_run("estimated", episodes=1, steps=4, seed=3)
              if not isinstance(e, (BenchmarkResult, AccessLog))]
    with open_bus(settings=settings) as bus:
        publish(events, bus, settings)
    out = write_report("estimated", settings, tmp_path / "report.html")
    dom = chromium(tmp_path, "--dump-dom", out.as_uri()).stdout
    assert 'data-ready="1"' in dom
    docs = documents_by_kind(events)
    empty = [p for p in PANELS if not panel_rows(p, docs[p.kind])]
    assert "reads-per-worker" in {p.id for p in empty}
    for panel in PANELS:
        body = section(dom, panel.id)
        if panel in empty:
            assert "<svg" not in body and "No data:" in body, panel.id
        else:
            assert "<svg" in body and "No data:" not in body, panel.id
    assert "only the real benchmark" in section(dom, "reads-per-worker")
    assert f'data-charts="{len(PANELS) - len(empty)}"' in dom
