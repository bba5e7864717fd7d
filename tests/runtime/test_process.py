"""ProcessRuntime (``isolation: process``) on real child processes and real models: the
same answers and errors as in process, a child that crashes, segfaults or is killed from
outside is restarted with the in-flight call failing 502 and calls meanwhile 503, a hung
one is killed after N deadlines in a row, big batches cross through shared memory, and
no child, scratch folder or segment outlives its server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from servewell.core.signature import Signature
from servewell.errors import (
    InvalidArtifact,
    InvalidInput,
    ModelCrashed,
    ModelFailed,
    ModelUnavailable,
)
from servewell.runtime import create_runtime
from servewell.runtime.bundle import write_bundle
from servewell.runtime.process import ProcessRuntime
from servewell.runtime.restart import ChildExit, RestartPolicy
from serving_models import PYTHON_MODELS

COLUMN = Signature.from_json_file(PYTHON_MODELS / "column.json")
COLUMN_OF_SUM = Signature.from_json_file(PYTHON_MODELS / "sum.json")
FAST_RESTART = RestartPolicy(first_delay_s=0.1, max_delay_s=1.0)
ONE = {"x": np.array([1.0, 2.0], dtype=np.float32)}
POISON = {"x": np.array([-1.0], dtype=np.float32)}
#: Bound on any wait for a child to come back (the machine is shared and slow at times).
BACK_WITHIN_S = 60.0


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the children's scratch folders go (the test's own, to look inside)."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _bundle(tmp_path: Path, model: str, artifacts: Path | None = None) -> Path:
    return write_bundle(PYTHON_MODELS / f"{model}.py", artifacts, None, tmp_path / f"{model}.py")


@pytest.fixture
def opened() -> Iterator[Callable[..., ProcessRuntime]]:
    """Loads a ProcessRuntime for a Python model; every one is closed after the test."""
    runtimes: list[ProcessRuntime] = []

    def open_model(path: Path, policy: RestartPolicy = FAST_RESTART) -> ProcessRuntime:
        runtime = ProcessRuntime("python", path, None, COLUMN, model="m", version=1, policy=policy)
        runtime.load()
        runtimes.append(runtime)
        return runtime

    yield open_model
    for runtime in runtimes:
        runtime.close()


def _exits(runtime: ProcessRuntime) -> list[ChildExit]:
    seen: list[ChildExit] = []
    runtime.on_exit = seen.append
    return seen


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BACK_WITHIN_S
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {BACK_WITHIN_S} s"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.parametrize("format", ["onnx", "sklearn"])
def test_answers_as_the_runtime_in_process(
    format: str, model_files: dict[str, Path], iris: tuple[np.ndarray, np.ndarray]
) -> None:
    path = model_files["onnx" if format == "onnx" else "joblib"]
    inside = create_runtime(format, path)
    inside.load()
    isolated = ProcessRuntime(format, path)
    isolated.load()
    try:
        assert isolated.platform == inside.platform
        assert isolated.describe() == inside.describe()
        assert isolated.may_block
        for rows in (iris[0][:1], iris[0]):
            expected, got = inside.predict({"input": rows}), isolated.predict({"input": rows})
            assert expected.keys() == got.keys()
            for name in expected:
                assert got[name].dtype == expected[name].dtype
                np.testing.assert_array_equal(got[name], expected[name])
    finally:
        isolated.close()
        inside.close()


def test_load_and_predict_errors_are_the_runtimes_own(
    tmp_path: Path, opened: Callable[..., ProcessRuntime]
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00 not a model")
    with pytest.raises(InvalidArtifact) as inside:
        create_runtime("onnx", broken).load()
    with pytest.raises(InvalidArtifact) as isolated:
        ProcessRuntime("onnx", broken).load()
    assert isolated.value.message == inside.value.message

    flaky = opened(_bundle(tmp_path, "flaky"))  # every 3rd call raises; load warms up once
    assert flaky.predict(ONE)["y"].tolist() == [1.0, 2.0]
    with pytest.raises(ModelFailed, match="call 3 fails on purpose") as failed:
        flaky.predict(ONE)
    assert "RuntimeError" in str(failed.value.__cause__)  # the child's traceback
    assert flaky.predict(ONE)["y"].tolist() == [1.0, 2.0]  # the same child answers on
    wrong = opened(_bundle(tmp_path, "wrong_output"))
    with pytest.raises(ModelFailed, match="'z'"):
        wrong.predict(POISON)  # -1: an output named z
    assert wrong.is_up


def test_a_crash_fails_its_call_502_calls_meanwhile_503_then_it_is_back(
    tmp_path: Path, scratch: Path, opened: Callable[..., ProcessRuntime]
) -> None:
    runtime = opened(_bundle(tmp_path, "crash"))
    exits, first = _exits(runtime), runtime.pid
    with pytest.raises(ModelCrashed, match=r"crashed while answering \(exit status 1\)"):
        runtime.predict(POISON)
    assert not runtime.is_up
    with pytest.raises(ModelUnavailable, match="its process is restarting") as refused:
        runtime.predict(ONE)
    assert refused.value.retry_after_s >= 1
    _wait_until(lambda: runtime.is_up, "back")
    assert runtime.pid != first
    assert runtime.predict(ONE)["y"].tolist() == [1.0, 2.0]
    (event,) = exits
    assert (event.reason, event.exit_code, event.signal, event.pid) == ("crash", 1, None, first)
    assert len(list(scratch.iterdir())) == 1  # the dead child's folder is gone


def test_a_segfault_and_a_kill_from_outside_are_restarted(
    tmp_path: Path, opened: Callable[..., ProcessRuntime]
) -> None:
    runtime = opened(_bundle(tmp_path, "segfault"))
    exits = _exits(runtime)
    with pytest.raises(ModelCrashed, match="killed by SIGSEGV"):
        runtime.predict(POISON)
    _wait_until(lambda: runtime.is_up, "back after SIGSEGV")
    pid = runtime.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: runtime.pid not in (None, pid), "back after SIGKILL")
    assert runtime.predict(ONE)["y"].tolist() == [1.0, 2.0]
    assert [(e.reason, e.signal) for e in exits] == [("crash", "SIGSEGV"), ("crash", "SIGKILL")]
    assert exits[1].restart_in_s > exits[0].restart_in_s  # backoff: twice the last wait


def test_a_hung_child_is_killed_after_n_deadlines_in_a_row(
    tmp_path: Path, opened: Callable[..., ProcessRuntime]
) -> None:
    runtime = opened(
        _bundle(tmp_path, "hang"), RestartPolicy(first_delay_s=0.1, timeouts_to_kill=3)
    )
    exits, hung = _exits(runtime), runtime.pid
    with ThreadPoolExecutor(1) as pool:
        call: Future[object] = pool.submit(runtime.predict, POISON)
        runtime.note_timeout()
        runtime.note_timeout()
        time.sleep(0.2)
        assert not call.done()  # 2 < 3: still alive
        assert runtime.pid == hung
        runtime.note_timeout()
        with pytest.raises(ModelCrashed, match="killed after 3 deadlines in a row"):
            call.result(timeout=BACK_WITHIN_S)
    _wait_until(lambda: runtime.is_up, "back")
    assert [e.reason for e in exits] == ["hang"]
    assert runtime.predict(ONE)["y"].tolist() == [1.0, 2.0]


def test_an_answer_resets_the_count_of_deadlines(
    tmp_path: Path, opened: Callable[..., ProcessRuntime]
) -> None:
    runtime = opened(_bundle(tmp_path, "hang"), RestartPolicy(timeouts_to_kill=2))
    pid = runtime.pid
    runtime.note_timeout()
    runtime.predict(ONE)  # it answered: not hung
    runtime.note_timeout()
    assert runtime.is_up
    assert runtime.pid == pid


def test_big_batches_cross_through_shared_memory_which_close_removes(
    tmp_path: Path, opened: Callable[..., ProcessRuntime]
) -> None:
    before = set(os.listdir("/dev/shm"))
    runtime = opened(_bundle(tmp_path, "crash"))
    rng = np.random.default_rng(0)
    for size in (300_000, 300_000, 1_000_000, 10):  # the first big answer comes in-band
        batch = {"x": rng.random(size, dtype=np.float32)}
        np.testing.assert_array_equal(runtime.predict(batch)["y"], batch["x"])
    assert len(set(os.listdir("/dev/shm")) - before) == 2  # a request and a reply segment
    runtime.close()
    assert set(os.listdir("/dev/shm")) - before == set()


def test_close_stops_a_hung_child_in_bounded_time(
    tmp_path: Path, scratch: Path, opened: Callable[..., ProcessRuntime]
) -> None:
    runtime = opened(_bundle(tmp_path, "hang"), RestartPolicy(stop_grace_s=0.5))
    pid = runtime.pid
    assert pid is not None
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(runtime.predict, POISON)
        time.sleep(0.2)
        closing = threading.Thread(target=runtime.close)
        closing.start()
        closing.join(timeout=BACK_WITHIN_S)
        assert not closing.is_alive()
        with pytest.raises((ModelCrashed, ModelUnavailable)):
            call.result(timeout=BACK_WITHIN_S)
    assert not _alive(pid)
    assert list(scratch.iterdir()) == []  # the unpacked bundle went with it
    with pytest.raises(ModelUnavailable, match="stopped"):
        runtime.predict(ONE)


def test_invalid_input_from_the_model_stays_a_400(tmp_path: Path) -> None:
    source = tmp_path / "refuses.py"
    source.write_text(
        textwrap.dedent(
            """
            from servewell.errors import InvalidInput

            class Refuses:
                def load(self, artifacts_dir):
                    pass

                def predict(self, inputs):
                    if (inputs["x"] > 5).any():
                        raise InvalidInput("x over 5", input_name="x")
                    return {"y": inputs["x"]}
            """
        )
    )
    runtime = ProcessRuntime(
        "python", write_bundle(source, None, None, tmp_path / "b"), None, COLUMN
    )
    runtime.load()
    try:
        with pytest.raises(InvalidInput, match="x over 5") as refused:
            runtime.predict({"x": np.array([6.0], dtype=np.float32)})
        assert refused.value.input_name == "x"
    finally:
        runtime.close()


def test_the_child_does_not_outlive_a_server_killed_outright(tmp_path: Path, scratch: Path) -> None:
    """A server process SIGKILLed (no shutdown at all): its child goes with it (the
    kernel's parent-death signal, or the lifeline closing), and the next server's first
    child removes the scratch folder the dead one left."""
    bundle = _bundle(tmp_path, "sum")
    script = textwrap.dedent(
        f"""
        import sys, tempfile, time
        from pathlib import Path
        from servewell.core.signature import Signature
        from servewell.runtime.process import ProcessRuntime
        tempfile.tempdir = {str(scratch)!r}
        signature = Signature.from_json_file(Path({str(PYTHON_MODELS / "sum.json")!r}))
        runtime = ProcessRuntime("python", Path({str(bundle)!r}), None, signature)
        runtime.load()
        print(runtime.pid, flush=True)
        time.sleep(600)
        """
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert server.stdout is not None
        child = int(server.stdout.readline())
        assert _alive(child)
        assert len(list(scratch.iterdir())) == 1
        server.kill()
        server.wait(timeout=BACK_WITHIN_S)
        _wait_until(lambda: not _alive(child), "ended with its server")
        tempfile.tempdir = str(scratch)
        try:
            next_one = ProcessRuntime("python", bundle, None, COLUMN_OF_SUM)
            next_one.load()
            next_one.close()
        finally:
            tempfile.tempdir = None
        assert not list(scratch.iterdir())  # the dead server's, and the next one's
    finally:
        server.kill()
        server.wait(timeout=BACK_WITHIN_S)
        if server.stdout is not None:
            server.stdout.close()


def test_a_child_busy_in_c_code_does_not_outlive_a_server_killed_outright(
    tmp_path: Path, scratch: Path
) -> None:
    """The lifeline's watcher thread cannot run while the model holds the GIL in C: the
    kernel kills the child with its server (PR_SET_PDEATHSIG)."""
    bundle, marker = _bundle(tmp_path, "busy"), tmp_path / "busy-now"
    script = textwrap.dedent(
        f"""
        import threading, time
        from pathlib import Path
        import numpy as np
        from servewell.core.signature import Signature
        from servewell.runtime.process import ProcessRuntime
        signature = Signature.from_json_file(Path({str(PYTHON_MODELS / "column.json")!r}))
        runtime = ProcessRuntime("python", Path({str(bundle)!r}), None, signature)
        runtime.load()
        poison = {{"x": np.array([[-1.0]], dtype=np.float32)}}
        threading.Thread(target=runtime.predict, args=(poison,), daemon=True).start()
        while not Path({str(marker)!r}).exists():
            time.sleep(0.01)
        print(runtime.pid, flush=True)
        time.sleep(600)
        """
    )
    environment = os.environ | {"BUSY_MODEL_MARKER": str(marker), "TMPDIR": str(scratch)}
    server = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=environment
    )
    try:
        assert server.stdout is not None
        child = int(server.stdout.readline())
        assert _alive(child)
        server.kill()
        server.wait(timeout=BACK_WITHIN_S)
        _wait_until(lambda: not _alive(child), "killed with its server")
    finally:
        server.kill()
        server.wait(timeout=BACK_WITHIN_S)
        if server.stdout is not None:
            server.stdout.close()


def test_segments_of_a_server_killed_with_its_group_are_swept_by_the_next(
    tmp_path: Path, scratch: Path
) -> None:
    """The whole process group SIGKILLed: neither the server nor its child (nor the
    resource tracker) lives to unlink the shared segments of big batches; the next
    server's first child removes them (they would fill /dev/shm, which is RAM)."""
    bundle = _bundle(tmp_path, "sum")
    script = textwrap.dedent(
        f"""
        import os, tempfile, time
        import numpy as np
        from pathlib import Path
        from servewell.core.signature import Signature
        from servewell.runtime.process import ProcessRuntime
        tempfile.tempdir = {str(scratch)!r}
        signature = Signature.from_json_file(Path({str(PYTHON_MODELS / "sum.json")!r}))
        runtime = ProcessRuntime("python", Path({str(bundle)!r}), None, signature)
        runtime.load()
        column = np.ones(300_000, np.float32)
        for _ in range(2):  # the second big answer crosses through a reply segment
            runtime.predict({{"x": column, "y": column}})
        print(os.getpid(), flush=True)
        time.sleep(600)
        """
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        pid = int(server.stdout.readline())
        left = [name for name in os.listdir("/dev/shm") if name.startswith(f"servewell-shm-{pid}-")]
        assert left, "the big batch crossed through no named segment"
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=BACK_WITHIN_S)
        tempfile.tempdir = str(scratch)
        try:
            next_one = ProcessRuntime("python", bundle, None, COLUMN_OF_SUM)
            next_one.load()
            next_one.close()
        finally:
            tempfile.tempdir = None
        assert not [name for name in os.listdir("/dev/shm") if name in left]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=BACK_WITHIN_S)
        if server.stdout is not None:
            server.stdout.close()
