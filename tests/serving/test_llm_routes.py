"""Route groups in a server's model pool: the names checked at start-up, and a
classifier rule asking a real text classifier (MiniLM, the text runtime) through the
predictor, only when the rules before it did not hold."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import CollectorRegistry

from servewell.bootstrap import build_services
from servewell.core.llm_routing import Choice
from servewell.core.signature import Signature
from servewell.core.validation import InputLimits
from servewell.errors import InvalidConfig
from servewell.observability import ServingMetrics
from servewell.observability.llm_metrics import LlmMetrics
from servewell.registration.register import register_file
from servewell.serving.llm_routes import RouteGroups, route_header
from servewell.serving.pool import ModelPool
from servewell.serving.predictor import Predictor
from servewell.settings import RouteGroup, Settings
from serving_models import register_adder
from text_models import require_torch, text_model

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _group(classifier: str = "tickets") -> RouteGroup:
    return RouteGroup.model_validate(
        {
            "models": ["adder", "tickets"],
            "default": "adder",
            "rules": [
                {"keywords": ["compare"], "model": "tickets"},
                {"classifier": classifier, "label": "account", "model": "tickets"},
            ],
        }
    )


@pytest.fixture
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Predictor]:
    require_torch()
    model = text_model(tmp_path_factory.getbasetemp() / "text-model")
    home = tmp_path_factory.mktemp("routes") / "home"
    services = build_services(Settings(home=home))
    register_file(services, model, "tickets", format="text")
    register_adder(services, home.parent)
    pool = ModelPool(services, [], ServingMetrics(CollectorRegistry()))
    await pool.load()
    yield Predictor(pool, InputLimits())
    await pool.close()
    services.close()


async def test_a_classifier_label_picks_the_model(served: Predictor) -> None:
    metrics = ServingMetrics(CollectorRegistry())
    routes = RouteGroups({"support": _group()}, served, LlmMetrics(metrics))
    routes.check(served.pool.names(), _signature_of(served))
    login = await routes.route("support", "I can't log in, my password is wrong", 12)
    assert login == Choice("tickets", "classifier:tickets=account")
    parcel = await routes.route("support", "where is my parcel?", 8)
    assert parcel == Choice("adder", "default")
    compared = await routes.route("support", "compare the two invoices", 8)
    assert compared == Choice("tickets", "keyword:compare")
    assert route_header("support", login) == (
        b"x-servewell-route",
        b"support; model=tickets; rule=classifier:tickets=account",
    )
    exposition = metrics.render()[0].decode()
    assert (
        'servewell_llm_routed_total{group="support",model="tickets",'
        'rule="classifier:tickets=account"} 1.0'
    ) in exposition
    assert 'rule="default"} 1.0' in exposition


async def test_start_up_refuses_what_cannot_route(served: Predictor) -> None:
    metrics = LlmMetrics(ServingMetrics(CollectorRegistry()))
    names, signature_of = served.pool.names(), _signature_of(served)
    with pytest.raises(InvalidConfig, match=r"route_groups\.support: model 'ghost' is not served"):
        RouteGroups({"support": _group("ghost")}, served, metrics).check(names, signature_of)
    with pytest.raises(InvalidConfig, match=r"route_groups\.adder: a served model has the group"):
        RouteGroups({"adder": _group()}, served, metrics).check(names, signature_of)
    not_text = RouteGroups({"support": _group("adder")}, served, metrics)
    with pytest.raises(InvalidConfig, match="'adder' is not a text classifier"):
        not_text.check(names, signature_of)


def _signature_of(predictor: Predictor) -> Callable[[str], Signature]:
    return lambda name: predictor.pool.get(name).signature
