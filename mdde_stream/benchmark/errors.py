"""The benchmark package's root error."""

from __future__ import annotations

from mdde_stream.errors import MddeError


class BenchmarkError(MddeError):
    """A benchmark could not be planned, run or answered."""
