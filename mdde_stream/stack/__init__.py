"""The real local stack (Redis, Kafka, Elasticsearch) without containers: `mdde-stream stack`."""

from mdde_stream.stack.base import ServiceStatus
from mdde_stream.stack.manager import stack_env, stack_status, start_stack, stop_stack
from mdde_stream.stack.process import StackError

__all__ = ["ServiceStatus", "StackError", "stack_env", "stack_status", "start_stack", "stop_stack"]
