"""Learners for the environment: masked MADDPG in torch, the shared Redis replay ("hive mind"),
actor processes, checkpoints and the thesis-style evaluation.

Submodules import torch; import them directly (``mdde_stream.agents.maddpg``) so that importing this
package stays cheap for code that only needs the evaluation of scripted baselines.
"""

from __future__ import annotations

__all__ = ["actor", "checkpoint", "cli", "distributed", "evaluate", "maddpg", "memory", "memory_redis", "telemetry"]
