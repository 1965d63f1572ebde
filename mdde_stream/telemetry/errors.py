"""The telemetry package's root error."""

from __future__ import annotations

from mdde_stream.errors import MddeError


class TelemetryError(MddeError):
    """Telemetry could not be indexed, validated or imported."""
