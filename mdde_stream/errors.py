"""The root of every error this library raises on purpose.

Each package has one root of its own where its errors cross package lines — ``BusError`` (bus),
``StoreError`` (registry), ``DataNodeError`` (data nodes), ``BenchmarkError`` (benchmark),
``StageError`` (environment stage), ``ReplayError`` (replay), ``StackError`` (local stack),
``TelemetryError`` (telemetry), ``EventDecodeError`` (events) — and all of them derive from
:class:`MddeError`, so a caller can tell "the project refused this" from a bug. Each also keeps the
builtin base it had (``ValueError`` for bad input, ``RuntimeError`` or ``TimeoutError`` for a failed
operation), so existing ``except`` clauses keep working.
"""

from __future__ import annotations


class MddeError(Exception):
    """Something the project detected and refused, with a message meant for people."""
