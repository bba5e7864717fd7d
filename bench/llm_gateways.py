"""The processes ``bench/llm.py`` measures: the scripted upstream, servewell serving it as
a ``remote`` model, and LiteLLM's proxy in front of the same upstream."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from run import LOAD_CORE, SERVER_CORE, create_key, free_port

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / "tests" / "upstreams" / "scripted_openai.py"
UPSTREAM_MODEL = "scripted"
GATEWAY_MODEL = "bench-llm"
#: The environment variable that holds the upstream's credential (the scripted upstream
#: accepts any).
CREDENTIAL_ENV = "BENCH_LLM_UPSTREAM_KEY"
LITELLM_KEY = "sk-bench-" + "0123456789abcdef" * 2
LITELLM_VENV = Path("/tmp/litellm-venv/bin/litellm")
#: servewell as a gateway: API keys on (one key), a rate limit checked on every request
#: that never refuses; the response cache off (LiteLLM has none configured either).
SERVEWELL_SETTINGS = {
    "SERVEWELL_AUTH__ENABLED": "true",
    "SERVEWELL_RATE_LIMITS__ENABLED": "true",
    "SERVEWELL_RATE_LIMITS__BACKEND": "memory",
    "SERVEWELL_RATE_LIMITS__DEFAULT_RATE": "1000000000/minute",
    "SERVEWELL_CACHE__ENABLED": "false",
    CREDENTIAL_ENV: "sk-upstream-bench",
}


class NotAnswering(Exception):
    """A gateway started but did not answer a chat completion."""


@dataclass
class Gateway:
    """One path to the upstream: where to send, the model name there, its key."""

    name: str
    url: str
    model: str
    key: str | None
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_upstream(folder: Path, latency_ms: float, chunk_delay_ms: float) -> Gateway:
    """The scripted upstream on the load core; every answer after ``latency_ms``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "script.json"
    default = {"latency_ms": latency_ms, "chunk_delay_ms": chunk_delay_ms}
    script.write_text(json.dumps({"default": default}))
    command = [
        "taskset", "-c", LOAD_CORE, sys.executable, str(UPSTREAM), "--port", "0",
        "--script", str(script), "--latency-ms", str(latency_ms), "--model", UPSTREAM_MODEL,
    ]  # fmt: skip
    log = folder / "upstream.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline and process.poll() is None:
        line = log.read_text().partition("\n")[0].strip()
        if line.startswith("listening on "):
            break
        time.sleep(0.1)
    if not line.startswith("listening on "):
        process.kill()
        sys.exit(f"the scripted upstream did not start: {log.read_text()[-2000:]!r}")
    return Gateway("direct", line.removeprefix("listening on "), UPSTREAM_MODEL, None, process)


def register_remote(folder: Path, upstream_url: str) -> None:
    """``servewell register spec.yaml --format remote`` of the upstream (kind openai)."""
    spec = folder / "upstream.yaml"
    spec.write_text(
        "\n".join(
            [
                "kind: openai",
                f"url: {upstream_url}",
                f"model: {UPSTREAM_MODEL}",
                f"credential_env: {CREDENTIAL_ENV}",
                "timeouts: {connect_s: 5, read_s: 30}",
                "retries: 0",
                "prices: {input_per_1k: 0.0005, output_per_1k: 0.0015}",
                "",
            ]
        )
    )
    servewell = Path(sys.executable).parent / "servewell"
    command = [str(servewell), "register", str(spec), "--format", "remote", "--name", GATEWAY_MODEL]
    done = subprocess.run(
        command, capture_output=True, text=True, env=os.environ | SERVEWELL_SETTINGS
    )
    if done.returncode != 0:
        sys.exit(f"registering the remote model failed:\n{done.stdout}{done.stderr}")


def prepare_servewell(home: Path, upstream_url: str) -> str:
    """Register the remote model and create a key; the key's token."""
    register_remote(home, upstream_url)
    return create_key()[1]


def start_servewell_gateway(
    home: Path, key: str, name: str = "servewell", profile_to: Path | None = None
) -> Gateway:
    """``servewell serve`` (one worker) on the server core, under pyinstrument if asked."""
    folder = home / name
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servewell = str(Path(sys.executable).parent / "servewell")
    prefix = []
    if profile_to is not None:
        pyinstrument = str(Path(sys.executable).parent / "pyinstrument")
        prefix = [pyinstrument, "-r", "pyisession", "-o", str(profile_to)]
    command = ["taskset", "-c", SERVER_CORE, *prefix, servewell, "serve", "--port", str(port)]
    log = (folder / "servewell.log").open("wb")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
        env=os.environ | SERVEWELL_SETTINGS,
    )
    gateway = Gateway(name, f"http://127.0.0.1:{port}", GATEWAY_MODEL, key, process)
    wait_answering(gateway, folder / "servewell.log")
    return gateway


def find_litellm(given: Path | None) -> tuple[Path | None, str]:
    """The ``litellm`` command to run, or None and why not."""
    if given is not None:
        return (given, "") if given.exists() else (None, f"--litellm {given} does not exist")
    found = shutil.which("litellm")
    if found:
        return Path(found), ""
    if LITELLM_VENV.exists():
        return LITELLM_VENV, ""
    return None, (
        f"no `litellm` on PATH nor at {LITELLM_VENV}; install it apart from servewell: "
        "python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'"
    )


def litellm_config(upstream_url: str) -> str:
    """One model on the upstream; master key; no database, callbacks or retries."""
    config = {
        "model_list": [
            {
                "model_name": GATEWAY_MODEL,
                "litellm_params": {
                    "model": f"openai/{UPSTREAM_MODEL}",
                    "api_base": f"{upstream_url}/v1",
                    "api_key": SERVEWELL_SETTINGS[CREDENTIAL_ENV],
                },
            }
        ],
        "litellm_settings": {
            "callbacks": [],
            "success_callback": [],
            "failure_callback": [],
            "num_retries": 0,
            "request_timeout": 30,
            "telemetry": False,
        },
        "general_settings": {"master_key": LITELLM_KEY},
    }
    return json.dumps(config, indent=2)  # JSON is YAML


def start_litellm(litellm: Path, folder: Path, upstream_url: str) -> Gateway:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "litellm.yaml"
    config.write_text(litellm_config(upstream_url))
    port = free_port()
    command = [
        "taskset", "-c", SERVER_CORE, str(litellm), "--config", str(config),
        "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1",
    ]  # fmt: skip
    # No cost map fetched at start, no .env read, only errors logged; no DATABASE_URL.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "LITELLM"))}
    env |= {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",
    }
    log = (folder / "litellm.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=env)
    gateway = Gateway("litellm", f"http://127.0.0.1:{port}", GATEWAY_MODEL, LITELLM_KEY, process)
    wait_answering(gateway, folder / "litellm.log")
    return gateway


def chat(gateway: Gateway, client: httpx.Client) -> httpx.Response:
    headers = {"Authorization": f"Bearer {gateway.key}"} if gateway.key else {}
    body = {"model": gateway.model, "messages": [{"role": "user", "content": "hello"}]}
    return client.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)


def wait_answering(gateway: Gateway, log: Path, timeout_s: float = 180.0) -> None:
    """Until a chat completion through ``gateway`` answers 200."""
    deadline = time.monotonic() + timeout_s
    answer = None
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline and gateway.process.poll() is None:
            try:
                answer = chat(gateway, client)
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    gateway.stop()
    said = answer.text[:500] if answer is not None else "no answer"
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    raise NotAnswering(
        f"{gateway.name} did not answer a chat completion ({said}); its log ends:\n{tail}"
    )


def litellm_overhead_header(gateway: Gateway, requests: int = 30) -> float:
    """The median of LiteLLM's own ``x-litellm-overhead-duration-ms`` at concurrency 1."""
    found = []
    with httpx.Client(timeout=30) as client:
        for _ in range(requests):
            value = chat(gateway, client).headers.get("x-litellm-overhead-duration-ms")
            if value is not None:
                found.append(float(value))
    return statistics.median(found) if found else float("nan")
