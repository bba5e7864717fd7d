"""``isolation: process`` on a real ``servewell serve``: a model whose process crashes,
segfaults, exits every k-th call or is SIGKILLed from outside answers 502 for the
request it held and 503 with ``Retry-After`` while it restarts, never hangs; readiness
turns false, then true; the restart is counted and logged; the server and its other
models keep serving; SIGTERM leaves no child behind; ONNX and scikit-learn models answer
exactly as they do in process."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import ECHO_VALUES, build_model_home, register_python, serve_process

ISOLATED = ("crash", "segfault", "exits-every")
#: Generous: a request must never hang, but the machine is shared.
CLIENT_TIMEOUT_S = 30.0
BACK_WITHIN_S = 60.0


def _isolation_env(home: Path, *models: str, scratch: str = "scratch") -> dict[str, str]:
    """``models`` in child processes, whose scratch folders go to ``home/../<scratch>``."""
    env = {f"SERVEWELL_MODELS__{m.upper().replace('-', '_')}__ISOLATION": "process" for m in models}
    folder = home.parent / scratch
    folder.mkdir(exist_ok=True)
    # No response cache: every request must reach the model. No access log: nothing
    # reads the server's output pipe until it stops, and a full pipe stops the server.
    quiet = {"SERVEWELL_CACHE__ENABLED": "false", "SERVEWELL_SERVER__ACCESS_LOG": "false"}
    return env | quiet | {"TMPDIR": str(folder)}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("isolation") / "home"
    services = build_services(Settings(home=home))
    try:
        register_python(services, "sum", "sum", signature="sum.json")
        for model in ("crash", "segfault", "exits_every"):
            register_python(services, model.replace("_", "-"), model)
    finally:
        services.close()
    return home


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[tuple[str, int, list[str]]]:
    """The URL, the pid and (after the module) the log of a server whose crash,
    segfault and exits-every models run in child processes; sum runs in process."""
    log: list[str] = []
    models = ",".join(("sum", *ISOLATED))
    env = _isolation_env(home, *ISOLATED)
    with serve_process(home, "--no-auth", "--models", models, env=env, log=log) as (url, proc):
        yield url, proc.pid, log


def _x(url: str, model: str, x: float) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/{model}:predict", json={"instances": [x]}, timeout=CLIENT_TIMEOUT_S
    )


def _sum(url: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/sum:predict",
        json={"instances": [{"x": 1, "y": 2}]},
        timeout=CLIENT_TIMEOUT_S,
    )


def _children(pid: int) -> dict[str, int]:
    """The server's model processes, by the ``model@version`` on their command line."""
    found: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"servewell.runtime.child" in b" ".join(argv):
                found[argv[-2].decode()] = int(child)
    return found


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BACK_WITHIN_S
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {BACK_WITHIN_S} s"
        time.sleep(0.05)


def _ready(url: str, model: str) -> tuple[bool, bool]:
    server = httpx.get(f"{url}/v2/health/ready", timeout=CLIENT_TIMEOUT_S).status_code == 200
    one = httpx.get(f"{url}/v2/models/{model}/ready", timeout=CLIENT_TIMEOUT_S)
    assert one.json()["ready"] is (one.status_code == 200)
    return server, one.status_code == 200


def _restarts(url: str, model: str, reason: str = "crash") -> float:
    text = httpx.get(f"{url}/metrics", timeout=CLIENT_TIMEOUT_S).text
    series = f'servewell_model_restarts_total{{model="{model}",reason="{reason}",version="1"}}'
    for line in text.splitlines():
        if line.startswith(series):
            return float(line.split()[-1])
    return 0.0


def _crash_and_recover(
    url: str, model: str, crash: Callable[[], None], allowed: frozenset[int] = frozenset({503})
) -> list[int]:
    """Crash ``model``; the statuses of its requests until it answers again (each one
    of ``allowed``), while the server's other model answers throughout."""
    before = _restarts(url, model)
    crash()
    statuses = []
    while (answer := _x(url, model, 1.0)).status_code != 200:
        statuses.append(answer.status_code)
        assert answer.status_code in allowed, answer.text
        if answer.status_code == 503:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["code"] == "model_unavailable"
        assert _sum(url).status_code == 200
        time.sleep(0.05)
    _until(lambda: _ready(url, model) == (True, True), "ready again")
    assert _restarts(url, model) == before + 1
    return statuses


@pytest.mark.parametrize(("model", "how"), [("crash", "exit status 1"), ("segfault", "SIGSEGV")])
def test_a_crash_mid_request_is_a_502_then_503s_then_it_serves_again(
    server: tuple[str, int, list[str]], model: str, how: str
) -> None:
    url, pid, _ = server
    first = _children(pid)[f"{model}@1"]

    def crash() -> None:
        answer = _x(url, model, -1.0)
        assert answer.status_code == 502, answer.text
        assert answer.json()["code"] == "model_crashed"
        assert "crashed while answering" in answer.json()["error"]
        assert _ready(url, model) == (False, False)  # not back this soon (0.5 s backoff)

    statuses = _crash_and_recover(url, model, crash)
    assert statuses  # the restart took a moment: someone was told to come back
    assert _children(pid)[f"{model}@1"] != first


def test_a_child_killed_from_outside_is_restarted(server: tuple[str, int, list[str]]) -> None:
    url, pid, _ = server
    child = _children(pid)["crash@1"]

    def kill() -> None:
        os.kill(child, signal.SIGKILL)
        _until(lambda: not _alive(child), "killed")

    # A request may meet the dead pipe before the server has noticed: a 502 then.
    _crash_and_recover(url, "crash", kill, allowed=frozenset({502, 503}))
    assert _children(pid)["crash@1"] != child


def test_a_model_that_exits_every_third_call_only_ever_gets_200_502_503(
    server: tuple[str, int, list[str]],
) -> None:
    url, _, _ = server
    seen: dict[int, int] = {}
    deadline = time.monotonic() + BACK_WITHIN_S
    while seen.get(502, 0) < 2 or seen.get(200, 0) < 4:
        assert time.monotonic() < deadline, seen
        status = _x(url, "exits-every", 1.0).status_code
        seen[status] = seen.get(status, 0) + 1
        assert _sum(url).status_code == 200
    assert set(seen) <= {200, 502, 503}, seen
    _until(lambda: _restarts(url, "exits-every") >= 2, "restarts counted")


def test_every_caller_of_a_batch_that_crashed_the_process_is_answered_at_once(
    server: tuple[str, int, list[str]],
) -> None:
    """Requests batched together when the process dies all get its 502 (or, while it
    restarts, 503): none waits for its deadline (it was answered 504 after 30 s, and
    the timeouts got the restarted, healthy process killed as hung)."""
    url, _, _ = server
    with ThreadPoolExecutor(16) as pool:
        for _ in range(3):
            answers = list(pool.map(lambda _: _x(url, "crash", -1.0), range(16)))
            statuses = sorted(answer.status_code for answer in answers)
            assert set(statuses) <= {502, 503}, statuses
    _until(lambda: _x(url, "crash", 1.0).status_code == 200, "back")
    assert _sum(url).status_code == 200


def test_a_restart_is_logged_and_sigterm_leaves_no_child_behind(home: Path) -> None:
    env, log = _isolation_env(home, "crash", "segfault", scratch="sigterm"), []
    with serve_process(home, "--no-auth", "--models", "crash,segfault", env=env, log=log) as (
        url,
        proc,
    ):
        children = _children(proc.pid)
        assert set(children) == {"crash@1", "segfault@1"}
        assert _x(url, "segfault", -1.0).status_code == 502
        _until(lambda: _x(url, "segfault", 1.0).status_code == 200, "back")
        children = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)  # the server alone, not its process group
        assert proc.wait(timeout=BACK_WITHIN_S) == 0
        for child in children.values():
            _until(lambda child=child: not _alive(child), f"child {child} gone")
    assert not list((home.parent / "sigterm").glob("servewell-process-*"))
    lines = [json.loads(line) for line in log[0].splitlines() if line.startswith("{")]
    (exit,) = [line for line in lines if line.get("event") == "model_process_exit"]
    assert exit["level"] == "warning"
    assert (exit["model"], exit["version"], exit["reason"]) == ("segfault", "1", "crash")
    assert (exit["exit_code"], exit["signal"]) == (-11, "SIGSEGV")
    assert exit["restart_in_s"] > 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def iris_home(
    tmp_path_factory: pytest.TempPathFactory,
    classifier: object,
    iris: tuple[np.ndarray, np.ndarray],
) -> Path:
    return build_model_home(tmp_path_factory.mktemp("isolation-iris") / "home", classifier, iris[0])


def test_onnx_and_sklearn_answer_as_in_process(
    iris_home: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    """iris from its pickle (``prefer_onnx`` off), adder and echo as ONNX: byte for byte."""
    rows = iris[0][:5].tolist()
    flat = [value for row in rows for value in row]
    echo = [
        {"name": f"in_{datatype}", "datatype": datatype, "shape": [1, 2], "data": values}
        for datatype, values in ECHO_VALUES.items()
    ]
    requests = [
        ("/v1/models/iris:predict", {"instances": rows}),
        (
            "/v2/models/iris/infer",
            {"inputs": [{"name": "input", "datatype": "FP32", "shape": [5, 4], "data": flat}]},
        ),
        ("/v1/models/adder:predict", {"instances": [{"x": 1.5, "y": 2.25}]}),
        ("/v2/models/echo/infer", {"inputs": echo}),
    ]
    answers = []
    for isolated in (False, True):
        env = {"SERVEWELL_RUNTIME__PREFER_ONNX": "false"}
        if isolated:
            env |= _isolation_env(iris_home, "iris", "adder", "echo")
        with serve_process(iris_home, "--no-auth", env=env) as (url, proc):
            assert len(_children(proc.pid)) == (3 if isolated else 0)
            platform = httpx.get(f"{url}/v2/models/iris", timeout=CLIENT_TIMEOUT_S).json()
            answers.append([platform["platform"]])
            for path, body in requests:
                answer = httpx.post(f"{url}{path}", json=body, timeout=CLIENT_TIMEOUT_S)
                assert answer.status_code == 200, answer.text
                answers[-1].append(json.loads(answer.content))
    assert answers[0][0] == "scikit-learn"
    assert answers[0] == answers[1]


def test_a_hung_child_is_killed_after_its_timeouts_in_a_row_and_serves_again(
    tmp_path: Path,
) -> None:
    """Three 504s in a row from a hung child (``restart_after_timeouts: 3``): its process
    is killed as hung (counted with reason ``hang``) and the next child answers."""
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    try:
        register_python(services, "hang", "hang")
    finally:
        services.close()
    env = _isolation_env(home, "hang", scratch="hung") | {
        "SERVEWELL_MODELS__HANG__TIMEOUT_MS": "300",
        "SERVEWELL_MODELS__HANG__RESTART_AFTER_TIMEOUTS": "3",
        "SERVEWELL_MODELS__HANG__BREAKER__ENABLED": "false",  # this is about the child
    }
    with serve_process(home, "--no-auth", "--models", "hang", env=env) as (url, proc):
        first = _children(proc.pid)["hang@1"]
        for _ in range(3):
            answer = _x(url, "hang", -1.0)  # holds the child forever
            assert answer.status_code == 504, answer.text
            assert answer.json()["code"] == "deadline_exceeded"
        _until(lambda: _restarts(url, "hang", reason="hang") == 1, "killed as hung")
        _until(lambda: not _alive(first), "the hung child gone")
        _until(lambda: _x(url, "hang", 1.0).status_code == 200, "answering again")
        assert _children(proc.pid)["hang@1"] != first
        assert _ready(url, "hang") == (True, True)
