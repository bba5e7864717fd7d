"""The dashboard's Load tests and doctor data: the newest recorded load test of each
model version (``registry/loadtests.py``) and the production checklist
(``doctor/runner.py``), run on demand against the server's own settings and registry
and, when its address is known, the server itself, off the event loop and bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field

from servewell.doctor import limits
from servewell.doctor.finding import Finding, Status
from servewell.errors import ServewellError
from servewell.http.running import RunningServer
from servewell.registry import RegistryAccess
from servewell.registry.loadtests import LoadTestRecord, LoadTestStore

#: The longest the dashboard waits for the checklist; the probe's own timeout is shorter.
DOCTOR_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 5.0
#: The checklist items whose findings name API keys (and their scopes or rates).
KEY_ITEMS = frozenset({limits.ITEM, limits.KEYS_ITEM})
#: What a viewer reads instead of such a finding's ``found``.
KEYS_HIDDEN = "the keys this names, and what they may do, are shown to admins only"


def latest_load_tests(access: RegistryAccess) -> list[LoadTestRecord]:
    """The newest load test of every model version that has one, by model and version
    (newest version first). Reads the database: call it off the loop."""
    newest: dict[tuple[str, int], LoadTestRecord] = {}
    for record in LoadTestStore(access.registry).list():  # newest first
        newest.setdefault((record.model, record.version), record)
    return sorted(newest.values(), key=lambda r: (r.model, -r.version))


@dataclass(frozen=True, slots=True)
class DoctorReport:
    at: float
    """When the run finished (seconds since the epoch)."""
    findings: list[Finding] = field(default_factory=list)
    url: str | None = None
    """The server address the live items asked (None: only the settings were read)."""
    error: str | None = None
    """Why there are no findings (the run took too long)."""

    @property
    def counts(self) -> dict[str, int]:
        return {str(s): sum(f.status is s for f in self.findings) for s in Status}


def as_seen_by(report: DoctorReport | None, is_admin: bool) -> DoctorReport | None:
    """The report an admin sees; for anyone else, the findings of :data:`KEY_ITEMS`
    without what they saw (key names and scopes): their verdict and fix stay."""
    if report is None or is_admin:
        return report
    findings = [
        dataclasses.replace(finding, found=KEYS_HIDDEN) if finding.item in KEY_ITEMS else finding
        for finding in report.findings
    ]
    return dataclasses.replace(report, findings=findings)


class DoctorRuns:
    """One checklist run at a time; the last report kept for the page."""

    def __init__(self, timeout_s: float = DOCTOR_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.last: DoctorReport | None = None
        self._lock = asyncio.Lock()
        self._work: asyncio.Future[list[Finding]] | None = None
        """The checklist's thread: a run given up on (timed out) goes on there, and the
        next run waits for it rather than start a second thread."""

    async def run(self, server: RunningServer, url: str | None) -> DoctorReport:
        """Run the checklist (``url``: where this server answers, for the live items),
        or wait for the run under way and return its report."""
        if self._lock.locked():
            async with self._lock:
                assert self.last is not None
                return self.last
        async with self._lock:
            if self._work is None or self._work.done():
                self._work = asyncio.ensure_future(asyncio.to_thread(_checklist, server, url))
            try:
                findings = await asyncio.wait_for(asyncio.shield(self._work), self.timeout_s)
                self.last = DoctorReport(time.time(), findings, url)
            except TimeoutError:
                error = f"the checklist took longer than {self.timeout_s:g} s"
                self.last = DoctorReport(time.time(), url=url, error=error)
            except ServewellError as exc:  # e.g. the registry went away
                self.last = DoctorReport(time.time(), url=url, error=exc.message)
            return self.last


def _checklist(server: RunningServer, url: str | None) -> list[Finding]:
    from servewell.doctor.context import build_context  # the checks import what they read
    from servewell.doctor.live import probe_server
    from servewell.doctor.runner import run_checks

    live = probe_server(url, None, PROBE_TIMEOUT_S) if url is not None else None
    return run_checks(build_context(server.services, live))
