"""Metrics and logs: one metrics object on an injected registry; JSON log lines."""

from servewell.observability.access import (
    AccessLog,
    LoggerAccessLog,
    StreamAccessLog,
    log_access,
)
from servewell.observability.logs import (
    ACCESS_LOGGER,
    JsonFormatter,
    RequestRecord,
    bind_request,
    configure_logging,
    current_request,
    unbind_request,
)
from servewell.observability.metrics import DeploymentMetrics, ServingMetrics

__all__ = [
    "ACCESS_LOGGER",
    "AccessLog",
    "DeploymentMetrics",
    "JsonFormatter",
    "LoggerAccessLog",
    "RequestRecord",
    "ServingMetrics",
    "StreamAccessLog",
    "bind_request",
    "configure_logging",
    "current_request",
    "log_access",
    "unbind_request",
]
