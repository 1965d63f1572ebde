"""mdde-stream: the Multi-agent Data Distribution Environment as an event-streaming pipeline.

``mdde_stream.parallel_env(**config)`` and ``mdde_stream.env(**config)`` give the PettingZoo
environments; they are imported lazily so that services importing ``mdde_stream.events`` or
``mdde_stream.bus`` do not pay for PettingZoo and the registry.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "env", "parallel_env"]


def __getattr__(name: str) -> Any:
    if name in ("env", "parallel_env"):
        # Importing the subpackage binds ``mdde_stream.env`` to it; that module is callable
        # (it forwards to the ``env`` factory), so both spellings keep working afterwards.
        import mdde_stream.env as _env_module

        return getattr(_env_module, name)
    raise AttributeError(f"module 'mdde_stream' has no attribute {name!r}")
