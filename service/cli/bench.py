"""`recsys bench`: the serving path at catalog scale, against its own floor and a prototype."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from service.bench import ab, report
from service.bench.run import BenchConfig, run
from service.cli.common import console, fail


def bench(
    bundle: Annotated[Path, typer.Option(help="A trained posts bundle (recsys train).")],
    items: Annotated[int, typer.Option(min=100, help="Catalog size.")] = 100_000,
    users: Annotated[int, typer.Option(min=1, help="Users with profiles and events.")] = 3000,
    k: Annotated[int, typer.Option(min=1)] = 20,
    candidates: Annotated[int, typer.Option(min=1, help="N retrieved for the ranker.")] = 200,
    seconds: Annotated[float, typer.Option(min=1, help="Length of each load level.")] = 5,
    connections: Annotated[
        list[int] | None, typer.Option(help="Closed-loop levels (default 1 2 4 8 16 32 64).")
    ] = None,
    rates: Annotated[
        list[float] | None,
        typer.Option(help="Open-loop rates as multiples of the prototype's max (default 0.5-2.5)."),
    ] = None,
    workers: Annotated[
        list[int] | None, typer.Option(help="recsys worker counts to run (default 1).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where JSON and PNG go.")] = Path("bench-results"),
    compare: Annotated[
        Path | None, typer.Option(help="An earlier run's JSON to compare with.")
    ] = None,
    impressions_ab: Annotated[
        int,
        typer.Option(
            min=0,
            help="Only measure the impression log: this many rounds of recsys with "
            "RECSYS_IMPRESSIONS off then on, p50/p99 ratios per level.",
        ),
    ] = 0,
    sources_ab: Annotated[
        int,
        typer.Option(
            min=0,
            help="Only measure the candidate sources: this many rounds of recsys with "
            "RECSYS_SOURCES two_tower alone then all four, p50/p99 ratios per level and "
            "timings_ms per stage.",
        ),
    ] = 0,
) -> None:
    """Build a catalog, serve it (recsys and a bare prototype, real uvicorn), load both with
    wrk and an open-loop client on loopback, and report the goal lines."""
    if impressions_ab and sources_ab:
        fail("--impressions-ab and --sources-ab are separate runs: give one of them", 2)
    defaults = BenchConfig(bundle=bundle)
    config = BenchConfig(
        bundle=bundle,
        items=items,
        users=users,
        k=k,
        candidates=candidates,
        seconds=seconds,
        connections=tuple(connections or defaults.connections),
        rates=tuple(rates or defaults.rates),
        workers=tuple(workers or defaults.workers),
        cache=out / "cache",
        ab=ab.IMPRESSIONS if impressions_ab else ab.SOURCES if sources_ab else None,
        ab_rounds=impressions_ab or sources_ab,
    )
    baseline = json.loads(compare.read_text()) if compare else None
    try:
        result = run(config, console.print)
    except RuntimeError as exc:
        fail(str(exc))
    path = report.write(result, out)
    if config.ab is not None:
        for line in ab.lines(result[config.ab.name]):
            console.print(line)
        console.print(f"wrote {path}")
        return
    png = report.chart(result, path.with_suffix(".png"))
    for line in report.goal_lines(result):
        console.print(line)
    if baseline:
        for line in report.compare(result, baseline):
            console.print(line)
    console.print(f"wrote {path}" + (f" and {png}" if png else " (no matplotlib: no chart)"))


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
