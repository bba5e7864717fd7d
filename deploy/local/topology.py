"""servewell's many-replica topology on one machine, without containers.

Starts, on loopback: a PostgreSQL database of its own (CREATE DATABASE on an existing
server), a Redis of its own on a spare port, N ``servewell serve`` replicas on that
registry and Redis with one shared artifact folder, a ``servewell worker`` (Celery)
running their batch jobs (``jobs.executor: celery``, the broker on that Redis's
database 1), nginx balancing between the replicas
(``deploy/nginx/proxy.conf``: passive health checks, one retry), and Prometheus
scraping each replica (``deploy/compose/prometheus/prometheus.yml`` with loopback
targets). Every process is a child of this one; ``stop()`` ends them and drops the
database.

    python deploy/local/topology.py --register fraud=model.onnx     # until Ctrl-C
    python deploy/local/topology.py --replicas 3 --admin-url postgresql://postgres@127.0.0.1/postgres

It prints the environment to give ``servewell register``, ``servewell keys`` and
``servewell alias`` so they act on this topology's registry. ``tests/deploy/
test_topology.py`` drives the same class under load.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

DEPLOY = Path(__file__).resolve().parents[1]
PROXY_CONF = DEPLOY / "nginx" / "proxy.conf"
PROMETHEUS_YML = DEPLOY / "compose" / "prometheus" / "prometheus.yml"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Longest wait for one process to come up (a replica loads its models first).
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str) -> str:
    """``name`` beside this Python (servewell), on PATH, or in /usr/sbin (nginx)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(f"{name} is not installed")
    return found


def wait_for(what: str, check: object, timeout_s: float = START_TIMEOUT_S) -> None:
    """Poll ``check()`` until it is true, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError, OSError):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not happen within {timeout_s} s")


@dataclass
class Replica:
    """One ``servewell serve`` process."""

    port: int
    home: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Topology:
    """The processes, their ports and the folder they keep their state in."""

    folder: Path
    replicas_wanted: int = 2
    admin_url: str = DEFAULT_ADMIN_URL
    serve_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)
    database: str = field(default_factory=lambda: f"servewell_topology_{uuid.uuid4().hex[:8]}")
    redis_port: int = field(default_factory=free_port)
    nginx_port: int = field(default_factory=free_port)
    prometheus_port: int = field(default_factory=free_port)
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _replica_count: int = 0

    # --- what callers use ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """nginx: where clients send requests."""
        return f"http://127.0.0.1:{self.nginx_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def database_url(self) -> str:
        head, _, _ = self.admin_url.rpartition("/")
        return f"{head}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def broker_url(self) -> str:
        """Celery's broker: the same Redis, a database of its own (apart from the limits'
        and the cache's keys)."""
        return f"redis://127.0.0.1:{self.redis_port}/1"

    def env(self) -> dict[str, str]:
        """The settings every servewell process of this topology runs with."""
        return {
            "SERVEWELL_DATABASE_URL": self.database_url,
            "SERVEWELL_REDIS_URL": self.redis_url,
            "SERVEWELL_ARTIFACTS_DIR": str(self.folder / "artifacts"),
            "SERVEWELL_JOBS__EXECUTOR": "celery",
            "SERVEWELL_JOBS__BROKER_URL": self.broker_url,
            "SERVEWELL_SERVER__FORWARDED_ALLOW_IPS": "127.0.0.1",
            "SERVEWELL_SERVER__SHUTDOWN_DELAY_S": "1",
            **self.extra_env,
        }

    def prepare(self) -> None:
        """The database (migrated) and Redis: enough to register models and keys."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._create_database()
        self._start_redis()
        self.servewell("db", "upgrade")

    def start(self) -> None:
        """The replicas, the worker, nginx and Prometheus (after :meth:`prepare`)."""
        for _ in range(self.replicas_wanted):
            self.replicas.append(self.start_replica())
        self._start_worker()
        self._start_nginx()
        self._start_prometheus()

    def stop(self) -> None:
        for replica in self.replicas:
            _end(replica.process)
        for process in self._children.values():
            _end(process)
        self.replicas.clear()
        self._children.clear()
        self._drop_database()

    def servewell(self, *args: str) -> str:
        """Run one ``servewell`` command on this topology's registry; its stdout."""
        result = subprocess.run(
            [find_binary("servewell"), *args],
            env=self._environment(self.folder / "cli"),
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"servewell {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    # --- replicas ----------------------------------------------------------------------------

    def start_replica(self) -> Replica:
        """One more ``servewell serve``, on a new port, once it is ready."""
        self._replica_count += 1
        home = self.folder / f"replica-{self._replica_count}"
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        with (home / "serve.log").open("ab") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                [find_binary("servewell"), "serve", "--port", str(port), *self.serve_args],
                env=self._environment(home),
                cwd=home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        replica = Replica(port, home, process)
        wait_for(f"replica on port {port} ready", lambda: self._is_ready(replica))
        return replica

    def replace(self, old: Replica) -> Replica:
        """A rolling restart of one replica: start its successor, put it behind nginx,
        then SIGTERM the old one (it drains) and take it out."""
        new = self.start_replica()
        self.replicas.append(new)
        self._reload()
        old.process.send_signal(signal.SIGTERM)
        old.process.wait(timeout=120)
        self.replicas.remove(old)
        self._reload()
        return new

    def kill(self, replica: Replica) -> None:
        """SIGKILL: nothing drains; nginx finds out from failed connections."""
        os.killpg(replica.process.pid, signal.SIGKILL)
        replica.process.wait(timeout=30)

    def _is_ready(self, replica: Replica) -> bool:
        if replica.process.poll() is not None:
            log = (replica.home / "serve.log").read_text(errors="replace")
            raise RuntimeError(f"replica exited with {replica.process.returncode}:\n{log}")
        return httpx.get(f"{replica.url}/v2/health/ready", timeout=5).status_code == 200

    def _environment(self, home: Path) -> dict[str, str]:
        environment = {**os.environ, "SERVEWELL_HOME": str(home), **self.env()}
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return environment

    # --- the Celery worker -----------------------------------------------------------------

    @property
    def worker_log(self) -> Path:
        return self.folder / "worker.log"

    def _start_worker(self) -> None:
        """``servewell worker``: the batch jobs the replicas take go to it over the broker."""
        home = self.folder / "worker"
        home.mkdir(parents=True, exist_ok=True)
        command = [find_binary("servewell"), "worker", "--concurrency", "1"]
        self._spawn("worker", command, self._environment(home), cwd=home)
        wait_for("worker ready", self._worker_is_ready)

    def _worker_is_ready(self) -> bool:
        worker = self._children["worker"]
        log = self.worker_log.read_text(errors="replace")
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.returncode}:\n{log}")
        return " ready." in log  # Celery's line once it consumes from the broker

    # --- PostgreSQL and Redis ----------------------------------------------------------------

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.database}"')

    def _drop_database(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def _start_redis(self) -> None:
        command = [find_binary("redis-server"), "--port", str(self.redis_port)]
        command += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--daemonize", "no", "--dir", str(self.folder)]
        self._spawn("redis", command)
        wait_for("redis", lambda: _accepts(self.redis_port))

    # --- nginx and Prometheus ----------------------------------------------------------------

    def _start_nginx(self) -> None:
        prefix = self.folder / "nginx"
        prefix.mkdir(exist_ok=True)
        self._write_nginx_conf()
        command = [find_binary("nginx"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        command += ["-e", str(prefix / "error.log")]  # not Debian's /var/log/nginx
        self._spawn("nginx", [*command, "-g", "daemon off;"])
        wait_for("nginx", lambda: httpx.get(f"{self.url}/v2/health/ready", timeout=5).is_success)

    def _write_nginx_conf(self) -> None:
        prefix = self.folder / "nginx"
        servers = "".join(
            f"        server {r.address} max_fails=2 fail_timeout=5s;\n" for r in self.replicas
        )
        temp = "".join(
            f"    {kind}_temp_path {prefix / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n    access_log off;\n{temp}"
            f"    upstream servewell {{\n{servers}        keepalive 16;\n    }}\n"
            f"    server {{\n        listen 127.0.0.1:{self.nginx_port};\n"
            f"        include {PROXY_CONF};\n    }}\n}}\n"
        )

    def _start_prometheus(self) -> None:
        self._write_prometheus_yml()
        folder = self.folder / "prometheus"
        command = [find_binary("prometheus"), f"--config.file={folder / 'prometheus.yml'}"]
        command += [f"--storage.tsdb.path={folder / 'data'}"]
        command += [f"--web.listen-address=127.0.0.1:{self.prometheus_port}"]
        self._spawn("prometheus", command)
        wait_for("prometheus", lambda: httpx.get(f"{self.prometheus_url}/-/ready").is_success)

    def _write_prometheus_yml(self) -> None:
        """The compose stack's configuration, scraping this topology's replicas every second."""
        config = yaml.safe_load(PROMETHEUS_YML.read_text(encoding="utf-8"))
        config["global"]["scrape_interval"] = "1s"
        config["rule_files"] = [str(PROMETHEUS_YML.parent / name) for name in config["rule_files"]]
        (job,) = config["scrape_configs"]
        job["static_configs"] = [{"targets": [r.address for r in self.replicas]}]
        folder = self.folder / "prometheus"
        folder.mkdir(exist_ok=True)
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    def _reload(self) -> None:
        """nginx and Prometheus read the replicas' list again (SIGHUP: graceful)."""
        if "nginx" in self._children:
            self._write_nginx_conf()
            self._children["nginx"].send_signal(signal.SIGHUP)
        if "prometheus" in self._children:
            self._write_prometheus_yml()
            self._children["prometheus"].send_signal(signal.SIGHUP)

    def _spawn(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self._children[name] = subprocess.Popen(
                command,
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def _accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's group, SIGKILL what is left after a bounded wait."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument(
        "--register",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="register FILE as model NAME before the replicas start (repeatable); "
        "without any, the replicas serve nothing until models are registered and they "
        "are restarted",
    )
    options = parser.parse_args()
    folder = options.folder or Path(tempfile.mkdtemp(prefix="servewell-topology-"))
    serve_args = () if options.register else ("--allow-empty",)
    topology = Topology(folder, options.replicas, options.admin_url, serve_args)
    topology.prepare()
    try:
        for entry in options.register:
            name, _, path = entry.partition("=")
            topology.servewell("register", str(Path(path).resolve()), "--name", name)
        topology.start()
        print(f"nginx:      {topology.url}\nprometheus: {topology.prometheus_url}")
        print("replicas:   " + " ".join(r.url for r in topology.replicas))
        print(f"worker log: {topology.worker_log}")
        print("for servewell register/keys/alias, export:")
        for name, value in topology.env().items():
            print(f"  export {name}={value}")
        print("Ctrl-C stops everything and drops the database.")
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        topology.stop()


if __name__ == "__main__":
    main()
