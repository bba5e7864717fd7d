from __future__ import annotations

from serving_models import InProcessClient


def test_health_is_one_line_naming_what_is_served(client: InProcessClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.text == "ready: serving iris@1, iris@2, adder@1, echo@1\n"


def test_v2_liveness_and_readiness(client: InProcessClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_health_probes_may_use_head(client: InProcessClient) -> None:
    """Load balancers often probe with HEAD: it answered 405 (attack finding)."""
    for path in ("/health", "/v2/health/live", "/v2/health/ready"):
        assert client.request("HEAD", path).status_code == 200, path


def test_every_response_carries_a_request_id(client: InProcessClient) -> None:
    generated = client.get("/v2/health/live").headers["x-request-id"]
    assert len(generated) == 24
    echoed = client.get("/v2/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


def test_openapi_documents_the_inference_routes(client: InProcessClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v2/models/{name}/infer" in paths
    assert "requestBody" in paths["/v2/models/{name}/infer"]["post"]
    assert "/v1/models/{name}:predict" in paths
    assert "/v2/models/{name}/versions/{version}/infer" in paths
    assert "requestBody" in paths["/v1/models/{name}/versions/{version}:predict"]["post"]
    assert "requestBody" in paths["/v1/chat/completions"]["post"]
    assert client.get("/docs").status_code == 200


def test_unknown_path_is_a_json_404(client: InProcessClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "code": "not_found"}
    assert client.get("/v2/nowhere").json() == {"error": "Not Found"}  # V2 keeps its shape
    refused = client.request("DELETE", "/v1/models")
    assert refused.status_code == 405
    assert refused.json() == {"error": "Method Not Allowed", "code": "method_not_allowed"}
