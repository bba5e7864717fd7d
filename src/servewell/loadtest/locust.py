"""A Locust file with the load test's bodies, headers and SLO, for load from many
machines (``locust -f load.py --headless``, or Locust's own master and workers).

The file embeds the prepared bodies (base64) and mixes the invalid ones in at the same
share; when Locust quits it judges the SLO on the ``predict`` requests (p50..p99.9 and
max in ms, ``errors`` as the failure ratio, ``rps``) and that every invalid body got a
4xx, and exits 6 on a failure, as ``servewell loadtest`` does. Open loop becomes
Locust's ``constant_throughput`` per user, for the number of users the file suggests.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from servewell.loadtest.bodies import RequestSet
from servewell.loadtest.schedule import Step
from servewell.loadtest.slo import Objective

#: Users an open-loop file suggests: the rate is shared between them.
OPEN_LOOP_USERS = 50

_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999, "max": 1.0}

_TEMPLATE = '''"""Locust load for {model} at {url}, written by servewell loadtest.

Run: locust -f {name} --headless --host {url} -u {users} -r {users} -t {duration}s
Exits 6 when the SLO ({slo}) fails or an invalid body gets anything but a 4xx.
"""

import base64
import math

from locust import FastHttpUser, constant, constant_throughput, events, task

PATH = {path!r}
HEADERS = {headers!r}
VALID = [base64.b64decode(body) for body in {valid!r}]
INVALID = [(base64.b64decode(body), headers) for body, headers in {invalid!r}]
INVALID_SHARE = {share!r}
#: (metric, operator, threshold): latencies in ms, errors a ratio, rps per second.
SLO = {objectives!r}
QUANTILES = {quantiles!r}
RATE_PER_USER = {rate_per_user!r}


class ServewellUser(FastHttpUser):
    wait_time = constant_throughput(RATE_PER_USER) if RATE_PER_USER else constant(0)
    sent = 0

    @task
    def predict(self):
        k = ServewellUser.sent
        ServewellUser.sent += 1
        if INVALID_SHARE and math.floor((k + 1) * INVALID_SHARE) > math.floor(k * INVALID_SHARE):
            body, headers = INVALID[k % len(INVALID)]
            with self.client.post(
                PATH, data=body, headers=headers, name="invalid body", catch_response=True
            ) as response:
                if 400 <= response.status_code < 500:
                    response.success()
                else:
                    response.failure(f"an invalid body got {{response.status_code}}")
            return
        with self.client.post(
            PATH, data=VALID[k % len(VALID)], headers=HEADERS, name="predict", catch_response=True
        ) as response:
            if not 200 <= response.status_code < 300:
                response.failure(f"status {{response.status_code}}")


def value_of(stats, metric):
    if metric == "errors":
        return stats.fail_ratio
    if metric == "rps":
        return stats.total_rps
    if metric == "max":
        return stats.max_response_time
    return stats.get_response_time_percentile(QUANTILES[metric])


@events.quitting.add_listener
def judge(environment, **kwargs):
    stats = environment.stats.get("predict", "POST")
    failed = []
    for metric, op, threshold in SLO:
        value = value_of(stats, metric)
        if not (value < threshold if op == "<" else value > threshold):
            failed.append(f"{{metric}}={{value:.4g}} (bound {{op}}{{threshold:g}})")
    wrong = environment.stats.get("invalid body", "POST").num_failures
    if wrong:
        failed.append(f"{{wrong}} invalid bodies got no 4xx")
    verdict = "FAIL: " + ", ".join(failed) if failed else "PASS"
    print(f"servewell SLO ({slo}): {{verdict}}")
    if failed:
        environment.process_exit_code = 6
'''


def locust_file(
    requests: RequestSet,
    steps: list[Step],
    objectives: list[Objective],
    slo: str,
    *,
    model: str,
    url: str,
    name: str,
) -> str:
    """The Locust file's text for these requests, the last (heaviest) step's load and the SLO."""
    step = steps[-1]
    users = step.concurrency or OPEN_LOOP_USERS
    rate_per_user = None if step.rate_per_s is None else step.rate_per_s / users
    fields: dict[str, Any] = {
        "model": model,
        "url": url,
        "name": name,
        "users": users,
        "duration": math.ceil(step.duration_s + step.ramp_s),
        "slo": slo or "none",
        "path": requests.path,
        "headers": requests.headers,
        "valid": [base64.b64encode(body).decode("ascii") for body in requests.valid],
        "invalid": [
            (base64.b64encode(body).decode("ascii"), headers) for body, headers in requests.invalid
        ],
        "share": requests.invalid_share,
        "objectives": [(o.metric, o.op, o.threshold) for o in objectives],
        "quantiles": _QUANTILES,
        "rate_per_user": rate_per_user,
    }
    return _TEMPLATE.format(**fields)
