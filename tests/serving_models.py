"""Real models for the serving tests, and ways to serve them: registered into a real
registry, run by real ONNX Runtime, served by a real uvicorn on a loopback port."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import numpy as np
import uvicorn

from redis_server import free_port
from servewell.bootstrap import Services
from servewell.cli.serve import edge_options
from servewell.core.signature import Signature
from servewell.errors import NotReady
from servewell.http.app import ServewellApp
from servewell.http.protocol import ServewellHttpProtocol
from servewell.registration.register import RegisterOptions, register_estimator, register_file
from servewell.registry import ModelVersion

IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

#: The V2 datatypes the echo model passes through, with a sample value pair each.
ECHO_VALUES: dict[str, list[Any]] = {
    "BOOL": [True, False],
    "UINT8": [0, 255],
    "UINT16": [1, 65535],
    "UINT32": [2, 4294967295],
    "UINT64": [3, 18446744073709551615],
    "INT8": [-128, 127],
    "INT16": [-32768, 32767],
    "INT32": [-5, 2147483647],
    "INT64": [-9223372036854775808, 9223372036854775807],
    "FP16": [0.5, -2.0],
    "FP32": [1.25, -3.5],
    "FP64": [0.1, 1e300],
    "BYTES": ["héllo", ""],
}


def register_iris(services: Services, classifier: Any, iris_x: np.ndarray) -> None:
    """``iris`` v1 (alias production) and v2: 4 named features, 3 classes, ONNX."""
    from servewell.runtime.sklearn import signature_from_estimator

    signature = signature_from_estimator(classifier).model_copy(
        update={"feature_names": IRIS_FEATURES}
    )
    for alias in ("production", None):
        register_estimator(
            services,
            "iris",
            classifier,
            options=RegisterOptions(signature=signature, alias=alias, sample={"input": iris_x}),
        )


def register_adder(services: Services, folder: Path) -> None:
    """``adder``: columnar, inputs ``x`` and ``y`` FP32 [-1, 1], output ``sum``."""
    import onnx
    from onnx import TensorProto, helper

    column = [None, 1]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["sum"])],
        "adder",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, column),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, column),
        ],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, column)],
    )
    path = folder / "adder.onnx"
    onnx.save(_model(graph), path)
    register_file(services, path, "adder")


def register_doubler(services: Services, folder: Path) -> None:
    """``doubler``: columnar, one input ``x`` FP32 [-1, 1], output ``twice`` = x + x."""
    import onnx
    from onnx import TensorProto, helper

    column = [None, 1]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["twice"])],
        "doubler",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, column)],
        [helper.make_tensor_value_info("twice", TensorProto.FLOAT, column)],
    )
    path = folder / "doubler.onnx"
    onnx.save(_model(graph), path)
    register_file(services, path, "doubler")


def register_echo(
    services: Services, folder: Path, name: str = "echo", shape: tuple[int | None, ...] = (None, 2)
) -> None:
    """``echo``: one input ``in_T`` and output ``out_T`` of shape [-1, 2] per datatype
    (or ``shape``: ``(None,)`` makes a columnar model whose REST rows are scalars)."""
    import onnx
    from onnx import helper

    types = {
        "BOOL": onnx.TensorProto.BOOL, "UINT8": onnx.TensorProto.UINT8,
        "UINT16": onnx.TensorProto.UINT16, "UINT32": onnx.TensorProto.UINT32,
        "UINT64": onnx.TensorProto.UINT64, "INT8": onnx.TensorProto.INT8,
        "INT16": onnx.TensorProto.INT16, "INT32": onnx.TensorProto.INT32,
        "INT64": onnx.TensorProto.INT64, "FP16": onnx.TensorProto.FLOAT16,
        "FP32": onnx.TensorProto.FLOAT, "FP64": onnx.TensorProto.DOUBLE,
        "BYTES": onnx.TensorProto.STRING,
    }  # fmt: skip
    nodes, inputs, outputs = [], [], []
    for datatype, onnx_type in types.items():
        nodes.append(helper.make_node("Identity", [f"in_{datatype}"], [f"out_{datatype}"]))
        inputs.append(helper.make_tensor_value_info(f"in_{datatype}", onnx_type, list(shape)))
        outputs.append(helper.make_tensor_value_info(f"out_{datatype}", onnx_type, list(shape)))
    path = folder / f"{name}.onnx"
    onnx.save(_model(helper.make_graph(nodes, name, inputs, outputs)), path)
    # Identity passes NaN through: the signature says what this model accepts.
    register_file(services, path, name)


def register_onnx_classifier(
    services: Services, folder: Path, iris_x: np.ndarray, iris_y: np.ndarray
) -> None:
    """``flower``: logistic regression converted by skl2onnx without ZipMap, as most
    ONNX classifiers come: outputs ``label`` INT64 [-1] and ``probabilities`` FP32
    [-1, 3], and no ``class_labels`` in its signature."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(iris_x, iris_y)
    onnx_model = to_onnx(model, iris_x[:1].astype(np.float32), options={"zipmap": False})
    path = folder / "flower.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    register_file(services, path, "flower")


#: Model classes (format ``python``) that tests and benchmarks serve: one that sums, and
#: ones that are slow, fail every k-th call, hang, crash the process or answer off their
#: signature on purpose; each file's docstring says what it does and its signature.
PYTHON_MODELS = Path(__file__).parent / "python_models"


def register_python(
    services: Services,
    name: str,
    model: str,
    *,
    signature: str | Path = "column.json",
    artifacts: Path | None = None,
    model_class: str | None = None,
) -> ModelVersion:
    """``python_models/<model>.py`` (trusted) as the next version of ``name``, with a
    signature file of that folder (or the one at the path given)."""
    return register_file(
        services,
        PYTHON_MODELS / f"{model}.py",
        name,
        format="python",
        trust=True,
        options=RegisterOptions(
            signature=Signature.from_json_file(PYTHON_MODELS / signature),
            artifacts=artifacts,
            model_class=model_class,
        ),
    )


def _model(graph: Any) -> Any:
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def echo_signature() -> Signature:
    return Signature.from_dict(
        {
            "inputs": [
                {"name": f"in_{name}", "datatype": name, "shape": [-1, 2]} for name in ECHO_VALUES
            ]
        }
    )


class ThreadedServer(uvicorn.Server):
    """uvicorn on a loopback port, in a thread of the test process."""

    def install_signal_handlers(self) -> None:
        pass

    @property
    def url(self) -> str:
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"


@contextmanager
def serve_in_thread(app: ServewellApp, **options: Any) -> Iterator[ThreadedServer]:
    """Serve ``app`` (with its lifespan) until the block ends; wait until it is ready.
    ``options`` go to ``uvicorn.Config`` (``timeout_keep_alive=1``, ...); the protocol is
    servewell's unless ``http`` names another (``http="httptools"``: stock uvicorn), and
    WebSocket and proxy headers are as ``servewell serve`` sets them from the app's
    settings unless ``ws``, ``proxy_headers`` or ``forwarded_allow_ips`` say otherwise."""
    options.setdefault("http", ServewellHttpProtocol)
    for name, value in edge_options(app.settings.server).items():
        options.setdefault(name, value)
    if _lane_switched_off():
        server = app.settings.server.model_copy(update={"fast_lane": False})
        app.settings = app.settings.model_copy(update={"server": server})
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_config=None,
        access_log=False,
        lifespan="on",
        **options,
    )
    server = ThreadedServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (server.started and _has_loaded(app)):
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _lane_switched_off() -> bool:
    """Whether this run has the fast lane off everywhere: ``make test`` runs the HTTP
    suites a second time with ``SERVEWELL_SERVER__FAST_LANE=false``, which the server
    processes read themselves and the threaded servers take from here (their settings
    are built by the tests, which may name the server section in full)."""
    return os.environ.get("SERVEWELL_SERVER__FAST_LANE", "").lower() in ("false", "0", "off")


def _has_loaded(app: ServewellApp) -> bool:
    """Whether the app has started and finished loading its models (or failed to), and
    the versions its traffic policies name (the loading task is done)."""
    try:
        return app.running.loading.done()
    except NotReady:
        return False


def build_adder_home(home: Path) -> Path:
    """A SERVEWELL_HOME holding the adder alone."""
    from servewell.bootstrap import build_services
    from servewell.settings import Settings

    services = build_services(Settings(home=home))
    try:
        register_adder(services, home.parent)
    finally:
        services.close()
    return home


def create_key(home: Path, name: str, **options: Any) -> str:
    """A new API key's secret in ``home``'s registry (``options``: its models, rate...)."""
    from servewell.bootstrap import build_services
    from servewell.registry.keys import ApiKeyStore
    from servewell.settings import Settings

    services = build_services(Settings(home=home))
    try:
        return ApiKeyStore(services.registry).create(name, **options)[1]
    finally:
        services.close()


def build_model_home(home: Path, classifier: Any, iris_x: np.ndarray) -> Path:
    """A SERVEWELL_HOME holding iris (v1 production, v2), adder and echo."""
    from servewell.bootstrap import build_services
    from servewell.settings import Settings

    services = build_services(Settings(home=home))
    try:
        register_iris(services, classifier, iris_x)
        register_adder(services, home.parent)
        register_echo(services, home.parent)
    finally:
        services.close()
    return home


class InProcessClient:
    """Synchronous calls into the app in process, through httpx's ASGI transport, on an
    event loop in a helper thread (the app's lifespan runs there too)."""

    def __init__(self, portal: Any, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.client = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.run(functools.partial(self.client.request, method, url, **kwargs))  # type: ignore[no-any-return]

    def run(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """``await call()`` on the app's event loop, bounded in time."""
        return self.portal.call(_bounded, call, IN_PROCESS_TIMEOUT_S)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@contextmanager
def serve_in_process(app: ServewellApp) -> Iterator[InProcessClient]:
    """Start ``app``, wait for its models, and give a client for it; shut it down after."""
    with anyio.from_thread.start_blocking_portal() as portal:
        portal.call(_bounded, app.startup, IN_PROCESS_TIMEOUT_S)
        portal.call(_bounded, app.wait_loaded, IN_PROCESS_TIMEOUT_S)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://servewell.test"
        )
        try:
            yield InProcessClient(portal, client)
        finally:
            portal.call(client.aclose)
            portal.call(_bounded, app.shutdown, IN_PROCESS_TIMEOUT_S)


#: No step of an in-process app (start, load, one request, stop) may take longer.
IN_PROCESS_TIMEOUT_S = 120.0


async def _bounded(call: Callable[[], Awaitable[Any]], timeout_s: float) -> Any:
    """``call()``, failing with TimeoutError after ``timeout_s`` (the ASGI transport has no
    timeout of its own: a request the app never answers would wait forever)."""
    with anyio.fail_after(timeout_s):
        return await call()


@contextmanager
def serve_process(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    log: list[str] | None = None,
    drain: bool = False,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``servewell serve`` as a real process on a free loopback port, ready when this
    yields its URL; the whole process group is killed after (workers included), and what
    it wrote is appended to ``log`` when one is given.

    ``drain``: read what it writes as it comes, on a thread (for a test sending many
    requests and reading its log: past the pipe's 64 KiB the server's lines wait in
    its memory, and past 16 MiB they are dropped); the test then must not read
    ``process.stdout`` itself."""
    port = free_port()
    environment = {**os.environ, "SERVEWELL_HOME": str(home), **(env or {})}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "servewell"), "serve", "--port", str(port), *args],
        cwd=home.parent,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: workers die with it
    )
    url = f"http://127.0.0.1:{port}"
    drained: list[str] = []
    reader = None
    if drain:
        assert process.stdout is not None
        reader = threading.Thread(target=drained.extend, args=(process.stdout,), daemon=True)
        reader.start()
    try:
        wait_until_ready(url, process, timeout_s=60)
        yield url, process
    finally:
        output = _kill_group(process, reader)
        if log is not None:
            log.append("".join(drained) + output)


def wait_until_ready(url: str, process: subprocess.Popen[str], timeout_s: float) -> None:
    """Until the server answers ready; if it exits or stays unready past the deadline,
    fail with what it logged (a server that never became ready is killed first: reading
    its output while it runs would wait forever)."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    state = f"exited with {process.returncode}" if process.poll() is not None else "never ready"
    log = _kill_group(process)
    raise RuntimeError(f"the server did not start ({state} after {timeout_s} s):\n{log}")


def _kill_group(process: subprocess.Popen[str], reader: threading.Thread | None = None) -> str:
    """Kill the whole group (a worker outliving its master would hold stdout open
    forever) and return what the server wrote (what ``reader`` has not taken)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if reader is not None:
        reader.join(timeout=30)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
        return ""
    output, _ = process.communicate(timeout=30)
    return output or ""
