"""``servewell jobs``: batch jobs on a running server (``POST /v1/models/{name}/jobs``
and ``/v1/jobs``): submit a file, follow it with a progress bar, fetch its results,
cancel, list."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from servewell.cli.output import console, print_json, reporting_errors
from servewell.cli.progress import rows_progress
from servewell.errors import JobFailed, ServewellError, Unavailable

if TYPE_CHECKING:
    from servewell.client import Client

app = typer.Typer(help="Batch prediction jobs on a running server.", no_args_is_help=True)

URL = typer.Option("http://127.0.0.1:8000", "--url", help="The server's URL.")
API_KEY = typer.Option(None, "--api-key", envvar="SERVEWELL_API_KEY", help="An API key.")
POLL_S = 0.5


@app.command("submit")
def submit(
    model: str = typer.Argument(..., help="The model's name (the version it resolves to now)."),
    data: Path = typer.Argument(..., help="The rows: .csv, .jsonl or .parquet."),
    id_column: str | None = typer.Option(None, "--id-column", help="The row id column."),
    table_format: str | None = typer.Option(None, "--format", help="csv, jsonl or parquet."),
    wait: bool = typer.Option(False, "--wait", help="Follow it to its end with a progress bar."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="With --wait: save results here."
    ),
    url: str = URL,
    api_key: str | None = API_KEY,
) -> None:
    """Upload a file as a batch job; print its id (and, with --wait, follow it)."""
    with _client(url, api_key) as client:
        job = client.submit_job(model, data, id_column, table_format)
        console.print(f"job {job['id']}: {job['model']}@{job['version']}, {job['state']}")
        if wait or output is not None:
            job = _follow(client, job)
            if output is not None:
                client.job_results(job["id"], output, format_for(output, None))
                console.print(f"results written to {output}")


@app.command("status")
def status(
    job_id: str = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    wait: bool = typer.Option(False, "--wait", help="Follow it to its end."),
    url: str = URL,
    api_key: str | None = API_KEY,
) -> None:
    """A job's state and progress."""
    with _client(url, api_key) as client:
        job = _follow(client, client.job(job_id)) if wait else client.job(job_id)
    if as_json:
        print_json(job)
        return
    console.print(_table([job]))


@app.command("results")
def results(
    job_id: str = typer.Argument(...),
    output: Path = typer.Option(..., "--output", "-o", help="Where the rows go."),
    table_format: str | None = typer.Option(None, "--format", help="csv, jsonl or parquet."),
    url: str = URL,
    api_key: str | None = API_KEY,
) -> None:
    """Save a succeeded job's rows (id, prediction, probabilities, error)."""
    with _client(url, api_key) as client:
        client.job_results(job_id, output, format_for(output, table_format))
    console.print(f"results written to {output}")


@app.command("cancel")
def cancel(
    job_id: str = typer.Argument(...), url: str = URL, api_key: str | None = API_KEY
) -> None:
    """Cancel a queued or running job."""
    with _client(url, api_key) as client:
        job = client.cancel_job(job_id)
    console.print(f"job {job['id']}: {job['state']}")


@app.command("list")
def list_jobs(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str = URL,
    api_key: str | None = API_KEY,
) -> None:
    """Your jobs (an admin key's: every job), newest first."""
    with _client(url, api_key) as client:
        jobs = client.jobs()
    if as_json:
        print_json(jobs)
        return
    console.print(_table(jobs))


@contextmanager
def _client(url: str, api_key: str | None) -> Iterator[Client]:
    import httpx

    from servewell.client import Client

    with reporting_errors(), Client(url, api_key, timeout_s=60.0) as client:
        try:
            yield client
        except httpx.TransportError as exc:
            raise Unavailable(f"the server at {url} ({exc})") from None


def format_for(output: Path, given: str | None) -> str | None:
    """The results' format: ``--format``, else -o's suffix, else the input's (None)."""
    from servewell.jobs.tables import format_of

    if given is not None:
        return format_of(output, given)  # InvalidInput for an unknown one
    try:
        return format_of(output)
    except ServewellError:
        return None


def _follow(client: Client, job: dict[str, Any]) -> dict[str, Any]:
    """Poll the job until it ends, with a progress bar; JobFailed unless it succeeded."""
    with rows_progress() as progress:
        task = progress.add_task(f"job {job['id']}", total=job["rows_total"])
        while job["state"] in ("queued", "running"):
            progress.update(task, total=job["rows_total"], completed=job["rows_done"])
            time.sleep(POLL_S)
            job = client.job(job["id"])
        progress.update(task, total=job["rows_total"], completed=job["rows_done"])
    if job["state"] != "succeeded":
        raise JobFailed(f"job {job['id']} {job['state']}: {job['error'] or 'no reason given'}")
    return job


def _table(jobs: list[dict[str, Any]]) -> Table:
    table = Table(title="Batch jobs", title_justify="left")
    for column in ("id", "model", "state", "rows", "failed rows", "rows/s", "created", "error"):
        table.add_column(column)
    for job in jobs:
        total = "?" if job["rows_total"] is None else f"{job['rows_total']:,}"
        rate = "-" if job["rows_per_s"] is None else f"{job['rows_per_s']:,.0f}"
        table.add_row(
            job["id"],
            f"{job['model']}@{job['version']}",
            job["state"],
            f"{job['rows_done']:,}/{total}",
            f"{job['rows_failed']:,}",
            rate,
            job["created_at"][:19],
            job["error"] or "",
        )
    return table
