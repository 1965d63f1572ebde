"""Data nodes (Redis servers with the generated records) and YCSB-like record generation."""

from mdde_stream.datanodes.generator import RecordSpec, generate_records, record_key
from mdde_stream.datanodes.redis_nodes import DataNodeError, DataNodes

__all__ = ["DataNodeError", "DataNodes", "RecordSpec", "generate_records", "record_key"]
