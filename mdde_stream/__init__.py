"""mdde-stream: the Multi-agent Data Distribution Environment as an event-streaming pipeline.

``from mdde_stream import mdde_v0`` gives the PettingZoo environments (``mdde_v0.parallel_env``,
``mdde_v0.env``, ``mdde_v0.raw_env``); ``mdde_stream.parallel_env`` is a shortcut to the first. They
are imported lazily so that services importing ``mdde_stream.events`` or ``mdde_stream.bus`` do not
pay for PettingZoo and the registry.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "mdde_v0", "parallel_env"]


def __getattr__(name: str) -> Any:
    if name == "mdde_v0":
        import mdde_stream.mdde_v0 as module

        return module
    if name == "parallel_env":
        from mdde_stream.mdde_v0 import parallel_env

        return parallel_env
    raise AttributeError(f"module 'mdde_stream' has no attribute {name!r}")
