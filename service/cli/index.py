"""`recsys index` (the batch item-indexing job), `recsys index status`, and the failed item
changes of the online worker: `recsys index failed` lists them, `recsys index retry` queues
them again."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from service.bundle import read_manifest
from service.cli.common import (
    StoreOption,
    UriOption,
    bundle_or_exit,
    console,
    fail,
    index_from,
    store_from,
)
from service.index import VectorIndexError
from service.indexing import IndexJobError, JobReport, ReaderError, run_index_job
from service.settings import get_settings
from service.state import StoreError

index_app = typer.Typer(help="Index a bundle's items into the vector index.")


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
        if not 0 <= i < n:
            raise ValueError
    except ValueError:
        fail(f"--shard must be i/N with 0 <= i < N, not {text!r}", 2)
    return i, n


@index_app.callback(invoke_without_command=True)
def index_items(
    ctx: typer.Context,
    bundle: Annotated[
        Path | None, typer.Option(help="Bundle folder whose item tower embeds.")
    ] = None,
    items: Annotated[
        Path | None, typer.Option(help="Items file: .parquet, .csv or .jsonl.")
    ] = None,
    uri: UriOption = None,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per batch.")] = 2048,
    shard: Annotated[
        str, typer.Option(help="i/N: index only shard i of N (stable by item id).")
    ] = "0/1",
    on_bad_rows: Annotated[
        str, typer.Option(help="fail: stop at the first bad row; skip: report and skip.")
    ] = "fail",
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Checkpoint folder (resume after a crash).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="State store that receives the item catalog (default: RECSYS_STORE_URI); "
            "'none' indexes vectors only."
        ),
    ] = None,
) -> None:
    """Embed items with the bundle's item tower, upsert them into its collection and record
    them in the service's item catalog."""
    if ctx.invoked_subcommand is not None:
        return
    if bundle is None or items is None:
        fail("--bundle and --items are required (or use a subcommand: status)", 2)
    i, n = _shard(shard)
    if on_bad_rows not in ("fail", "skip"):
        fail("--on-bad-rows must be fail or skip", 2)
    loaded = bundle_or_exit(bundle)
    catalog = None if store == "none" else store_from(store)
    index = index_from(uri)
    try:
        with _progress() as advance:
            report = run_index_job(
                loaded,
                index,
                items,
                checkpoint_dir or get_settings().index_checkpoint_dir,
                batch_size=batch,
                shard=i,
                shards=n,
                on_bad_rows=on_bad_rows,
                progress=advance,
                catalog=catalog,
            )
    except (IndexJobError, ReaderError, VectorIndexError, StoreError) as exc:
        fail(f"indexing failed: {exc}")
    finally:
        index.close()
        if catalog is not None:
            catalog.close()
    _print_report(report)


@contextmanager
def _progress() -> Iterator[Callable[[int], None]]:
    """A progress bar of rows handled and items/s; yields its ``advance(rows)``."""
    columns = (
        TextColumn("indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} items/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("index", total=None, rate="-")

        def advance(rows: int) -> None:
            bar.advance(task, rows)
            done = bar.tasks[0]
            bar.update(task, rate=f"{done.completed / (done.elapsed or 1e-9):,.0f}")

        yield advance


def _print_report(report: JobReport) -> None:
    if report.bad_rows:
        console.print(f"[yellow]{report.bad_rows} bad rows skipped, e.g.:", report.bad_examples)
    if report.resumed_batches:
        console.print(f"resumed after {report.resumed_batches} committed batches")
    rate = report.indexed / max(report.embed_seconds + report.upsert_seconds, 1e-9)
    console.print(
        f"{report.collection}: {report.indexed} upserted ({report.rows_read} rows read), "
        f"{report.final_count} in the collection; embed {report.embed_seconds:.1f}s, "
        f"upsert {report.upsert_seconds:.1f}s ({rate:,.0f} items/s)"
    )


@index_app.command("status")
def index_status(
    bundle: Annotated[Path, typer.Option(help="Bundle folder.")],
    uri: UriOption = None,
) -> None:
    """Show the bundle's collection: name, count, index type, metric."""
    manifest = read_manifest(bundle)
    index = index_from(uri)
    try:
        described = index.describe(manifest.version)
        described["fields"] = [dataclasses.asdict(f) for f in described.get("fields", [])]
        typer.echo(json.dumps(described, indent=2, default=str))
    except VectorIndexError as exc:
        fail(str(exc))
    finally:
        index.close()


@index_app.command("failed")
def index_failed(
    store: StoreOption = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Items to list.")] = 100,
) -> None:
    """List the items whose latest change the index refused (state failed), with the reason:
    one JSON object per line."""
    catalog = store_from(store)
    try:
        for status in catalog.failed_items(limit):
            typer.echo(json.dumps(dataclasses.asdict(status)))
    except StoreError as exc:
        fail(str(exc))
    finally:
        catalog.close()


@index_app.command("retry")
def index_retry(
    item_ids: Annotated[
        list[str] | None, typer.Argument(help="Failed items to queue again.", show_default=False)
    ] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="Queue every failed item.")] = False,
    store: StoreOption = None,
) -> None:
    """Queue failed items again (after fixing what refused them: the model, the index)."""
    if bool(item_ids) == all_failed:
        fail("name the items to retry, or pass --all", 2)
    catalog = store_from(store)
    try:
        queued = catalog.retry_failed(None if all_failed else item_ids)
    except StoreError as exc:
        fail(str(exc))
    finally:
        catalog.close()
    console.print(f"{queued} failed items queued again")


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
