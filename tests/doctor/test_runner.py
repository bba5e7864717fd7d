"""The runner: every check runs, a check that breaks is a failed item, warnings never
fail the run."""

from __future__ import annotations

from doctor_context import MakeContext
from servewell.doctor.context import Context
from servewell.doctor.finding import Finding, Status, passed, warned
from servewell.doctor.runner import CHECKS, has_failures, run_checks
from servewell.errors import NotFound


class _Broken:
    item = "broken"

    def run(self, context: Context) -> list[Finding]:
        raise NotFound("the registry went away")


class _Fine:
    item = "fine"

    def run(self, context: Context) -> list[Finding]:
        return [warned("fine", "worth a look", "do this")]


def test_a_check_that_breaks_is_a_failed_item_and_the_others_still_run(
    make_context: MakeContext,
) -> None:
    findings = run_checks(make_context(), (_Broken(), _Fine()))
    assert [(f.item, f.status) for f in findings] == [
        ("broken", Status.FAIL),
        ("fine", Status.WARN),
    ]
    assert findings[0].found == "could not be checked: the registry went away"
    assert has_failures(findings)
    assert not has_failures([*findings[1:], passed("x", "y")])


def test_the_checklist_covers_every_item_of_the_issue(make_context: MakeContext) -> None:
    items = {f.item.split(":")[0] for f in run_checks(make_context(), CHECKS)}
    assert items == {
        "versioning",
        "rate limiting",
        "api keys",
        "response cache",
        "logging",
        "metrics",
        "health checks",
        "timeouts and fallbacks",
        "security",
        "load testing",
        "monitoring",
        "documentation",
    }
