"""``recsys quality``: the command line of a quality run (an entry point of the ``recsys``
command, pyproject.toml)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import console, fail
from training.cli import DataDirOption, DatasetOption, need_training


def _mix(text: str) -> tuple[str, dict[str, float]]:
    """``name=source:share,source:share`` -> (name, shares)."""
    name, _, body = text.partition("=")
    try:
        shares = {s.split(":")[0].strip(): float(s.split(":")[1]) for s in body.split(",")}
    except (IndexError, ValueError):
        fail(f"--mix must look like all=two_tower:0.5,item_to_item:0.5, not {text!r}", 2)
    return name.strip(), shares


def quality(
    dataset: DatasetOption = "posts",
    data_dir: DataDirOption = None,
    out: Annotated[Path, typer.Option(help="Folder for quality-<data set>.json and .png.")] = Path(
        "docs"
    ),
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "1,2,3",
    split: Annotated[
        str, typer.Option(help="time (a global time cut), random, or config (the data set's).")
    ] = "time",
    bundle: Annotated[
        Path | None, typer.Option(help="Measure this bundle instead of training one per seed.")
    ] = None,
    users: Annotated[int, typer.Option(min=0, help="Held-out users sampled (0: all).")] = 1000,
    candidates: Annotated[int, typer.Option(min=50, max=1000)] = 200,
    mix: Annotated[
        list[str] | None,
        typer.Option(
            help="Candidate-source mixes, name=source:share,...; default: two_tower, "
            "two_tower+item_to_item, all four. two_tower alone is always measured."
        ),
    ] = None,
    mmr: Annotated[str, typer.Option(help="Comma-separated MMR weights.")] = "0.9,0.8,0.7,0.5,0.3",
    caps: Annotated[str, typer.Option(help="Comma-separated caps per attribute value.")] = "3,2,1",
    cap_attribute: Annotated[
        str | None, typer.Option(help="Item attribute capped (default: first filterable).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Cap training epochs.")] = None,
    cache: Annotated[
        Path, typer.Option(help="Bundles trained here are reused by the next run.")
    ] = Path("bench-results/quality"),
) -> None:
    """Recall@50 and NDCG@10 through the online path (Milvus Lite, ONNX, the recommender):
    two-tower search alone against merged candidate sources, and the diversity trade-off."""
    need_training()
    from training.datasets import DatasetError
    from training.quality.arms import DEFAULT_MIXES, TWO_TOWER
    from training.quality.plot import chart
    from training.quality.run import QualitySettings, run_quality

    try:
        mixes = dict(_mix(m) for m in mix) if mix else dict(DEFAULT_MIXES)
        mixes = {TWO_TOWER: DEFAULT_MIXES[TWO_TOWER], **mixes}
        settings = QualitySettings(
            dataset=dataset,
            data_dir=data_dir,
            split=None if split == "config" else split,
            seeds=tuple(int(s) for s in seeds.split(",") if s.strip()),
            bundle=bundle,
            users=users,
            candidates=candidates,
            mixes=mixes,
            mmr_weights=tuple(float(w) for w in mmr.split(",") if w.strip()),
            caps=tuple(int(m) for m in caps.split(",") if m.strip()),
            cap_attribute=cap_attribute,
            epochs=epochs,
            cache=cache,
        )
    except ValueError as exc:
        fail(f"bad option: {exc}", 2)
    try:
        doc = run_quality(settings, console.print)
    except (DatasetError, RuntimeError) as exc:
        fail(str(exc))
    doc["command"] = "recsys " + shlex.join(sys.argv[1:])
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"quality-{Path(dataset).stem}.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)
    png = chart(doc, path.with_suffix(".png"))
    for name, figures in doc["summary"]["retrieval"].items():
        shown = ", ".join(f"{k} {v['mean']:.4f}±{v['std']:.4f}" for k, v in figures.items())
        console.print(f"{name}: {shown}")
    typer.echo(path)
    if png:
        typer.echo(png)
