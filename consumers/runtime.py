"""Moved to :mod:`mdde_stream.services.runtime`; kept for entry points not yet moved."""

from mdde_stream.services.runtime import LoopService, Service, serve

__all__ = ["LoopService", "Service", "serve"]
