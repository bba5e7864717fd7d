"""The MiniLM text model over HTTP: raw text in (REST strings, V2 BYTES), tokenized by the
server after Unicode normalization, topics out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servewell.bootstrap import build_services
from servewell.http import create_app
from servewell.registration.register import register_file
from servewell.settings import AuthSettings, ServerSettings, Settings, ValidationSettings
from serving_models import InProcessClient, serve_in_process
from text_models import require_torch, text_model


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessClient]:
    require_torch()
    model = text_model(tmp_path_factory.getbasetemp() / "text-model")
    home = tmp_path_factory.mktemp("text-serving") / "home"
    services = build_services(Settings(home=home))
    register_file(services, model, "tickets", format="text")
    services.close()
    settings = Settings(
        home=home,
        auth=AuthSettings(enabled=False),
        validation=ValidationSettings(max_text_bytes=200),
        server=ServerSettings(models=["tickets"]),
    )
    with serve_in_process(create_app(settings)) as in_process:
        yield in_process


def test_rest_takes_raw_strings(client: InProcessClient) -> None:
    answer = client.post(
        "/v1/models/tickets:predict",
        json={"instances": ["I can't log in, my password is wrong", "where is my parcel?"]},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"] == ["account", "shipping"]
    assert len(body["probabilities"][0]) == len(body["classes"]) == 5


def test_v2_takes_bytes_tensors(client: InProcessClient) -> None:
    answer = client.post(
        "/v2/models/tickets/infer",
        json={
            "inputs": [
                {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["refund my order"]}
            ],
            "outputs": [{"name": "label"}],
        },
    )
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["datatype"] == "BYTES"
    assert output["data"] in (["returns"], ["billing"])


def test_control_and_invisible_characters_do_not_change_the_answer(
    client: InProcessClient,
) -> None:
    clean = "I can't log in, my password is wrong"
    dirty = "I can't\u200b log\x07 in, my pa\u202essword is wrong"
    answers = [
        client.post("/v1/models/tickets:predict", json={"instances": [text]}).json()
        for text in (clean, dirty)
    ]
    assert answers[0]["probabilities"][0] == pytest.approx(answers[1]["probabilities"][0], abs=1e-6)


def test_text_over_the_length_limit_is_a_400(client: InProcessClient) -> None:
    answer = client.post("/v1/models/tickets:predict", json={"instances": ["x" * 201]})
    assert answer.status_code == 400
    assert "at most 200" in answer.json()["error"]
