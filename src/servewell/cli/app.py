"""The ``servewell`` command: one Typer sub-app or command per module, joined here."""

from __future__ import annotations

import typer

from servewell.cli import (
    alias,
    demo,
    evaluate,
    gc,
    keys,
    models,
    optimize,
    predict,
    predictions,
    register,
    serve,
    traffic,
    train,
)
from servewell.cli.output import configure_logging

app = typer.Typer(
    name="servewell",
    help="Take a trained model to production and keep it healthy there.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    configure_logging(verbose)


app.command("register")(register.register)
app.add_typer(models.app, name="models")
app.add_typer(alias.app, name="alias")
app.command("rollback")(alias.rollback)
app.add_typer(traffic.app, name="traffic")
app.add_typer(keys.app, name="keys")
app.command("predict")(predict.predict)
app.command("predictions")(predictions.predictions)
app.command("feedback")(predictions.feedback)
app.command("demo")(demo.demo)
app.command("optimize")(optimize.optimize)
app.command("serve")(serve.serve)
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.command("gc")(gc.gc)


def main() -> None:
    app()
