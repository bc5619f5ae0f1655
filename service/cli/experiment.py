"""`recsys experiment report`: the A/B figures from the store's impression log and events."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import StoreOption, console, fail, store_from
from service.feedback.experiment_report import count, plot, report
from service.online.experiment import EXPERIMENT_KEY, Experiment
from service.state import StoreError

experiment_app = typer.Typer(help="A/B experiments.", no_args_is_help=True)


@experiment_app.command("report")
def experiment_report(
    store: StoreOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Write a PNG chart here (needs matplotlib).")
    ] = None,
    since: Annotated[
        float, typer.Option(help="Only impressions logged at or after (unix seconds).")
    ] = 0.0,
    control: Annotated[
        str | None,
        typer.Option(
            help="Variant the others are compared with (default: the stored "
            "experiment's first variant, else `default`)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Per variant: impressions, items shown, positives, CTR with its 95% Wilson interval, and
    the difference with the control (95% interval, two-proportion z-test)."""
    opened = store_from(store)
    try:
        raw = opened.get_meta(EXPERIMENT_KEY)
        experiment = Experiment.from_json(raw) if raw else None
        counts = count(opened.impressions_since(since), opened.feedback_since(since))
    except StoreError as exc:
        fail(f"state store: {exc}")
    finally:
        opened.close()
    base = control or (experiment.variants[0].name if experiment else "default")
    rows = report(counts, base)
    if as_json:
        typer.echo(json.dumps([{**asdict(r.counts), **_figures(r)} for r in rows], indent=2))
    else:
        title = f"experiment {experiment.name}" if experiment else "no experiment running"
        typer.echo(f"{title}; control: {base}")
        typer.echo(_table(rows))
    if out is not None:
        try:
            plot(rows, out, f"CTR per variant (control {base})")
        except ImportError as exc:
            fail(f"no chart: {exc} (pip install 'recsys[train]' or matplotlib)", 2)
        console.print(f"chart written to {out}")


def _figures(row) -> dict:
    names = ("ctr", "ctr_low", "ctr_high", "diff", "diff_low", "diff_high", "z", "p_value")
    return {name: getattr(row, name) for name in names}


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _table(rows) -> str:
    head = ("variant", "impressions", "shown", "positives", "CTR [95%]", "diff [95%]", "p")
    lines = [head]
    for r in rows:
        c = r.counts
        ctr = f"{_fmt(r.ctr)} [{_fmt(r.ctr_low)}, {_fmt(r.ctr_high)}]"
        diff = (
            f"{_fmt(r.diff, '+.4f')} [{_fmt(r.diff_low, '+.4f')}, {_fmt(r.diff_high, '+.4f')}]"
            if r.diff is not None
            else "-"
        )
        lines.append(
            (
                c.variant,
                str(c.impressions),
                str(c.items_shown),
                str(c.positives),
                ctr,
                diff,
                _fmt(r.p_value, ".3g"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in lines
    )


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")
