"""Telemetry: events -> Elasticsearch documents, the indexer, Kibana saved objects and the HTML run report.

Light to import: the Elasticsearch client is only needed by ``indexer`` (the ``telemetry`` extra).
"""

from __future__ import annotations

from mdde_stream.telemetry.documents import KINDS, Doc, documents_for
from mdde_stream.telemetry.report import write_report

__all__ = ["KINDS", "Doc", "documents_for", "write_report"]
