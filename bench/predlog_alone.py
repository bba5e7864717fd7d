"""The prediction log's own CPU per record, in one process, without HTTP (issue #20): a
load-steadier companion to bench/predlog.py, whose server-wide figures swing with what
else runs on the machine.

    .venv/bin/python bench/predlog_alone.py [--baseline SRC] [--rounds 5]

Each point is a fresh child process that makes ``--requests`` requests' worth (at
``--rate`` a second, so as many records wait in the buffer as in a server) of the
objects a REST request of the demo model leaves for the log (the body parsed by orjson,
an ``InferRequest`` validated as the predictor validates it, numpy outputs, a
``RequestRecord``, some short-lived garbage),
beside a server-sized heap of long-lived objects, frozen as the server freezes its own
after start-up (so garbage collections cost what they cost in a server), and hands
each to the real ``PredictionLog.add``; the log's flusher writes to a real registry
(SQLite, or Parquet files) in its thread, and sketches the rows into the window sketches
(the model is registered with its training profile, as the demo model is, so every
feature and the predictions are sketched, as in a server). The figure is the
process's CPU time (every thread) per request, less the same loop's with logging off,
and the event loop's thread's share of it. Points alternate between the configurations
in rounds; medians are printed. ``--baseline SRC`` adds the same run from another
checkout's source.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
#: The server's collector thresholds (``http/running.py``'s ``GC_THRESHOLDS``), set here
#: rather than imported so that a baseline checkout without them is measured alike.
SERVER_GC_THRESHOLDS = (20_000, 20, 20)
ROW = [17.99, 10.38, 122.8, 1001.0, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095]
ROW += [0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38]
ROW += [17.33, 184.6, 2019.0, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument(
        "--rate", type=float, default=8000, help="requests a second (a busy core's, quiet)"
    )
    parser.add_argument("--baseline", type=Path, help="src folder of the servewell to compare")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child[0], float(args.child[1]), args.requests))
        return
    src = HERE.parents[1] / "src"
    configs = {"off": (src, "off"), "database": (src, "database"), "parquet": (src, "parquet")}
    if args.baseline is not None:
        configs["database@base"] = (args.baseline.resolve(), "database")
    points: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, (source, store) in configs.items():
            points[name].append(run_child(source, store, args.requests, args.rate))
    off = statistics.median(total for total, _ in points["off"])
    off_loop = statistics.median(loop for _, loop in points["off"])
    print(
        f"| log (alone, {args.requests:,} requests a point) | CPU µs/request | logging's "
        "µs/request | of it, the event loop's | rounds (µs/request) |"
    )
    print("|---|---:|---:|---:|---|")
    for name, runs in points.items():
        total = statistics.median(t for t, _ in runs)
        loop = statistics.median(lp for _, lp in runs)
        rounds = ", ".join(f"{t:.1f}" for t, _ in runs)
        print(f"| {name} | {total:.1f} | {total - off:+.1f} | {loop - off_loop:+.1f} | {rounds} |")


def run_child(source: Path, store: str, requests: int, rate: float) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, str(HERE), "--child", store, str(rate), "--requests", str(requests)]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    total, loop = output.split()
    return float(total), float(loop)


async def child(store: str, rate: float, requests: int) -> None:
    import numpy as np
    import orjson
    from prometheus_client import CollectorRegistry

    from servewell.bootstrap import build_prediction_log, build_services
    from servewell.core.inference import InferRequest, InferResponse
    from servewell.core.ref import ModelRef
    from servewell.core.signature import Signature, TensorSpec
    from servewell.core.validation import validate_inputs
    from servewell.observability import RequestRecord, ServingMetrics
    from servewell.serving.prediction_rows import Answer
    from servewell.settings import Settings

    body = orjson.dumps({"instances": [ROW]})
    inputs = (TensorSpec(name="input", datatype="FP32", shape=(-1, 30)),)
    outputs = (
        TensorSpec(name="label", datatype="INT64", shape=(-1,)),
        TensorSpec(name="probabilities", datatype="FP32", shape=(-1, 2)),
    )
    signature = Signature(inputs=inputs, outputs=outputs)
    # a servewell before validation kept what was sent (InferResponse.sent) has no `sent`
    keeps_sent = "sent" in inspect.signature(validate_inputs).parameters
    heap = [[object()] for _ in range(400_000)]  # a server's long-lived objects, frozen
    gc.freeze()  # as http/running.py does once the server has started
    gc.set_threshold(*SERVER_GC_THRESHOLDS)  # and its collector's thresholds
    with tempfile.TemporaryDirectory() as folder:
        monitoring = {"store": store} if store == "parquet" else {}  # an older one has no store
        settings = Settings(home=Path(folder), monitoring=monitoring)
        services = build_services(settings)
        register_profiled(services)
        log = build_prediction_log(settings, services, ServingMetrics(CollectorRegistry()))
        log.start()
        warm_up = requests // 10  # imports, first writes and caches: not counted
        for n in range(-warm_up, requests):
            if n == 0:
                await log.flush()
                if store == "parquet":
                    await asyncio.to_thread(log.store.close)  # the warm-up's rows: a file
                gc.collect()
                started, started_loop = time.process_time(), time.thread_time()
                clock = time.monotonic()
            garbage = [{"k": [n, (n,)]} for _ in range(20)]  # a request's short-lived objects
            document = orjson.loads(body)
            request = InferRequest(ModelRef("bc", version=1), {"input": document["instances"]})
            sent: dict[str, Any] = {}
            if keeps_sent:  # as serving/predictor.py does
                validate_inputs(signature, request.inputs, sent=sent)
            else:
                validate_inputs(signature, request.inputs)
            label, probabilities = np.array([1]), np.array([[0.1, 0.9]], np.float32)
            outputs = {"label": label, "probabilities": probabilities}
            response = InferResponse("bc", 1, outputs, **({"sent": sent} if sent else {}))
            record = RequestRecord(f"abcdef{n:012x}", "POST", "/p", model="bc", version="1")
            if store != "off":
                log.add(record, 0.001, Answer(signature, request, response))
            if n % 100 == 0:  # paced: as many records alive as a server at ``rate`` keeps
                ahead_s = (n / rate - (time.monotonic() - clock)) if n > 0 else 0.0
                await asyncio.sleep(max(ahead_s, 0.0001))
        del garbage
        loop_s = time.thread_time() - started_loop
        await log.close()
        total_s = time.process_time() - started
        services.close()
    del heap
    print(f"{total_s * 1e6 / requests:.2f} {loop_s * 1e6 / requests:.2f}")


def register_profiled(services: object) -> None:
    """``bc``: a classifier of the demo's data (30 features, a matrix input) with its
    training profile, so the window sketches judge every feature and the predictions."""
    import json

    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from servewell.registration.register import RegisterOptions, register_estimator
    from servewell.registry.attachments import PROFILE_ROLE
    from servewell.stats import build_profile

    data = load_breast_cancer()
    names = [f"f{i}" for i in range(data.data.shape[1])]
    frame = pd.DataFrame(data.data, columns=names)
    model = LogisticRegression(max_iter=5000).fit(frame, data.target)
    profile = build_profile(
        {name: data.data[:, i] for i, name in enumerate(names)},
        dict.fromkeys(names, "numeric"),
        predictions=model.predict(frame),
    )
    options = RegisterOptions(
        convert=False, attachments={PROFILE_ROLE: json.dumps(profile).encode()}
    )
    register_estimator(services, "bc", model, options=options)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
