"""``recsys simulate``: the command line of the feedback-loop simulation (an entry point of the
``recsys`` command, pyproject.toml)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import console
from training.cli import need_training


def simulate(
    out: Annotated[Path, typer.Option(help="Folder for simulation.json and .png.")] = Path("docs"),
    rounds: Annotated[int, typer.Option(min=1, max=20, help="Retraining rounds after 0.")] = 3,
    users: Annotated[int, typer.Option(min=50, help="Simulated users.")] = 2000,
    items: Annotated[int, typer.Option(min=100, help="Catalog size.")] = 1000,
    initial_impressions: Annotated[
        int, typer.Option(min=2, help="Impressions per user in the log round 0 trains on.")
    ] = 10,
    requests: Annotated[int, typer.Option(min=1, help="Requests per user and round.")] = 2,
    k: Annotated[int, typer.Option(min=1, max=50, help="Items per answer.")] = 10,
    epochs: Annotated[int | None, typer.Option(min=1, help="Cap training epochs.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the data, the training and the clicks.")] = 7,
    workdir: Annotated[
        Path | None, typer.Option(help="Keep bundles, store and logs here (default: a temp dir).")
    ] = None,
) -> None:
    """Simulated users (their clicks follow the synthetic posts data's latent truth) request
    recommendations from a real `recsys serve` over HTTP, round after round: serve -> log ->
    export -> retrain -> gated reload, with an A/B of the round-0 bundle against the retrained
    one and a deliberately worse bundle offered to the gate."""
    need_training()
    from training.simulation.loop import SimulationSettings, run_simulation
    from training.simulation.report import chart, table

    temporary = workdir is None
    work = Path(tempfile.mkdtemp(prefix="recsys-simulate-")) if temporary else workdir
    work.mkdir(parents=True, exist_ok=True)
    settings = SimulationSettings(
        work, rounds, users, items, initial_impressions, requests, k, epochs, seed
    )
    try:
        result = run_simulation(settings, console.print)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "simulation.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(result, out / "simulation.png")
    typer.echo(table(result))
    for check in result["gate"]:
        typer.echo(
            f"gate, round {check['round']}, {check['bundle']}: {check['status']} "
            f"{check['decision']} {check['message'] or check['candidate']}"
        )
    typer.echo(json.dumps(result["totals"]))
    console.print(f"written {out / 'simulation.json'} and {out / 'simulation.png'}")
