"""The checklist in order, and running it: every check runs, whatever the others found
(a check that breaks is itself a failed item, never a crashed doctor)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from servewell.doctor.caching import CacheCheck
from servewell.doctor.documentation import DocumentationCheck
from servewell.doctor.finding import Check, Finding, Status, failed
from servewell.doctor.health import HealthCheck
from servewell.doctor.limits import KeyScopeCheck, RateLimitCheck
from servewell.doctor.loadtesting import LoadTestCheck
from servewell.doctor.logs import LoggingCheck
from servewell.doctor.metrics import MetricsCheck
from servewell.doctor.monitoring import MonitoringCheck
from servewell.doctor.resilience import ResilienceCheck
from servewell.doctor.security import SecurityCheck
from servewell.doctor.versioning import VersioningCheck

if TYPE_CHECKING:
    from servewell.doctor.context import Context

logger = logging.getLogger(__name__)

#: The production checklist, in the order it is printed.
CHECKS: tuple[Check, ...] = (
    VersioningCheck(),
    RateLimitCheck(),
    KeyScopeCheck(),
    CacheCheck(),
    LoggingCheck(),
    MetricsCheck(),
    HealthCheck(),
    ResilienceCheck(),
    SecurityCheck(),
    LoadTestCheck(),
    MonitoringCheck(),
    DocumentationCheck(),
)


def run_checks(context: Context, checks: tuple[Check, ...] = CHECKS) -> list[Finding]:
    """Every check's findings, in order."""
    from servewell.errors import ServewellError

    findings: list[Finding] = []
    for check in checks:
        try:
            findings.extend(check.run(context))
        except ServewellError as exc:  # e.g. the registry went away mid-run
            logger.debug("check %s failed", check.item, exc_info=True)
            findings.append(failed(check.item, f"could not be checked: {exc.message}", ""))
    return findings


def has_failures(findings: list[Finding]) -> bool:
    return any(finding.status is Status.FAIL for finding in findings)
