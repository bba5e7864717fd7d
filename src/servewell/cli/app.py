"""The ``servewell`` command: one Typer sub-app or command per module, joined here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

from servewell.cli import (
    alerts,
    alias,
    batch,
    db,
    demo,
    doctor,
    evaluate,
    gc,
    jobs,
    keys,
    loadtest,
    models,
    monitor,
    optimize,
    predict,
    predictions,
    profile,
    register,
    retrain,
    rollout,
    serve,
    traffic,
    train,
    usage,
    worker,
)
from servewell.cli.output import configure_logging, print_error

try:  # Typer vendors Click since 0.2x; before, it used Click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError  # type: ignore[assignment]


class OneLineUsageErrors(TyperGroup):
    """The root command: a usage error (an unknown command or option, a missing or bad
    value) is one line on stderr and exit 2, like every other failure of the CLI, rather
    than Typer's usage and boxed message."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_usage_errors():  # a subcommand's own arguments are parsed here
            return super().invoke(ctx)


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # no arguments: the help was asked
            raise
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        print_error(exc.format_message().rstrip(".") + where)
        raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="servewell",
    cls=OneLineUsageErrors,
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
app.add_typer(rollout.app, name="rollout")
app.add_typer(keys.app, name="keys")
app.command("usage")(usage.usage)
app.command("predict")(predict.predict)
app.command("batch")(batch.batch)
app.add_typer(jobs.app, name="jobs")
app.command("worker")(worker.worker)
app.command("predictions")(predictions.predictions)
app.command("feedback")(predictions.feedback)
app.command("monitor")(monitor.monitor)
app.command("profile")(profile.profile)
app.add_typer(alerts.app, name="alerts")
app.command("demo")(demo.demo)
app.command("optimize")(optimize.optimize)
app.command("serve")(serve.serve)
app.command("train")(train.train)
app.command("retrain")(retrain.retrain)
app.command("evaluate")(evaluate.evaluate)
app.command("gc")(gc.gc)
app.command("doctor")(doctor.doctor)
app.add_typer(db.app, name="db")
app.command("loadtest")(loadtest.loadtest)


def main() -> None:
    app()
