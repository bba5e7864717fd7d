"""deploy/k8s: every overlay renders with `kubectl kustomize`, every object passes the
Kubernetes schemas (strict: no unknown field), and the server's pods may drain as long
as the settings they run with say a drain takes."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy_tools import DEPLOY, assert_servewell_command, find_tool, run_tool
from servewell.settings import Settings

K8S = DEPLOY / "k8s"
OVERLAYS = sorted(path.parent for path in (K8S / "overlays").glob("*/kustomization.yaml"))
#: The cluster version the manifests are checked against (autoscaling/v2, policy/v1,
#: batch/v1 ttlSecondsAfterFinished: all stable well before it).
KUBERNETES_VERSION = "1.30.0"
#: Objects of the Prometheus operator's CRDs: no schema in kubernetes-validate.
CUSTOM_KINDS = {"ServiceMonitor"}


@functools.cache
def _kubectl() -> str:
    """kubectl, with a kustomize that knows components and ``labels`` (v4 and later:
    Debian bookworm's kubernetes-client 1.20 has v2)."""
    kubectl = find_tool("kubectl", "apt-get install kubectl (.ci/run does)")
    version = run_tool(kubectl, "version", "--client")
    found = re.search(r"Kustomize Version: v(\d+)", version)
    if found is None or int(found.group(1)) < 4:
        pytest.skip(f"kubectl's kustomize is older than v4 ({version.strip()}): need kubectl 1.21+")
    return kubectl


def _render(folder: Path) -> list[dict[str, Any]]:
    kubectl = _kubectl()
    return [doc for doc in yaml.safe_load_all(run_tool(kubectl, "kustomize", str(folder))) if doc]


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_there_are_overlays() -> None:
    assert {path.name for path in OVERLAYS} >= {"development", "production"}


@pytest.mark.parametrize("folder", [K8S / "base", *OVERLAYS], ids=lambda path: path.name)
def test_each_overlay_renders_to_valid_objects(folder: Path) -> None:
    import kubernetes_validate

    objects = _render(folder)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    assert {"Job", "ConfigMap", "Secret", "PersistentVolumeClaim"} <= kinds
    for item in objects:
        if item["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)


def test_a_schema_violation_is_caught() -> None:
    """The validation above can fail: a Deployment with a misspelt field is refused."""
    import kubernetes_validate

    server = _one(_render(K8S / "base"), "Deployment", "servewell")
    server["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(server, KUBERNETES_VERSION, strict=True)


def _settings(objects: list[dict[str, Any]]) -> Settings:
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    return Settings(**yaml.safe_load(config["data"]["servewell.yaml"]))


def test_the_server_drains_within_its_grace_period() -> None:
    objects = _render(K8S / "base")
    pod = _one(objects, "Deployment", "servewell")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    server = _settings(objects).server
    pre_stop_s = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert server.shutdown_delay_s > 0
    drain_s = pre_stop_s + server.shutdown_delay_s + server.drain_timeout_s
    assert pod["terminationGracePeriodSeconds"] > drain_s
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert "--no-auth" not in container["args"]


def test_pods_run_as_a_user_with_secrets_from_the_secret() -> None:
    objects = _render(K8S / "base")
    secret = _one(objects, "Secret", "servewell-secrets")
    assert set(secret["stringData"]) == {"SERVEWELL_DATABASE_URL", "SERVEWELL_REDIS_URL"}
    for name in ("servewell", "servewell-worker"):
        pod = _one(objects, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "servewell-secrets"}}]
    worker = _one(objects, "Deployment", "servewell-worker")["spec"]["template"]["spec"]
    assert worker["containers"][0]["args"][0] == "worker"
    assert_servewell_command(worker["containers"][0]["args"])
    assert _settings(objects).jobs.executor == "celery"  # jobs go to the worker pods
    job = _one(objects, "Job", "servewell-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]


def test_the_servicemonitor_is_optional_and_scrapes_metrics() -> None:
    assert "ServiceMonitor" not in {o["kind"] for o in _render(K8S / "base")}
    monitor = _one(_render(K8S / "overlays" / "production"), "ServiceMonitor", "servewell")
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    service = _one(_render(K8S / "base"), "Service", "servewell")
    assert service["spec"]["ports"][0]["name"] == "http"
