"""Which runs the bus holds, and their episodes: read from the small ``episodes`` topic only.

Every recorded episode starts with one ``EpisodeStarted`` event keyed by its run id, so this topic
is enough to list runs (``replay`` with no selection) and to tell whether a run id is taken
(``train`` refuses to reuse one unless asked to append).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mdde_stream.bus.base import Bus
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import EpisodeStarted
from mdde_stream.replay.exceptions import NothingSelectedError
from mdde_stream.replay.selection import Selection, read_selection


@dataclass
class RecordedRun:
    """One run id on the bus: the episodes that started and when."""

    run_id: str
    episodes: list[int] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None

    @property
    def next_episode(self) -> int:
        """The episode number an appended episode gets (after every recorded one)."""
        return max(self.episodes, default=-1) + 1

    def describe_episodes(self) -> str:
        eps = sorted(set(self.episodes))
        if not eps:
            return "none"
        if eps == list(range(eps[0], eps[-1] + 1)):
            return f"{eps[0]}–{eps[-1]}" if len(eps) > 1 else str(eps[0])
        return ", ".join(map(str, eps))


def recorded_runs(bus: Bus, settings: Settings | None = None, run_id: str | None = None) -> dict[str, RecordedRun]:
    """Runs recorded on ``bus`` (only ``run_id`` when given), oldest first; empty when there are none."""
    settings = settings or get_settings()
    selection = Selection(run_id=run_id, from_offset=None if run_id else 0, topics=(EpisodeStarted.TOPIC,))
    try:
        selected = read_selection(bus, selection, settings, skip_corrupt=True)
    except NothingSelectedError:
        return {}
    runs: dict[str, RecordedRun] = {}
    for item in sorted(selected.events, key=lambda e: e.event.ts):
        event = item.event
        run = runs.setdefault(event.run_id, RecordedRun(event.run_id))
        run.episodes.append(event.episode)
        run.first = run.first or event.ts
        run.last = event.ts
    return runs
