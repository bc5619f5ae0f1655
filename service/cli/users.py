"""`recsys users import`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import StoreOption, bundle_or_exit, console, fail, store_from
from service.indexing import ReaderError
from service.indexing.readers import read_rows
from service.profiles import import_profiles
from service.state import StoreError

users_app = typer.Typer(help="User profiles in the state store.", no_args_is_help=True)


@users_app.command("import")
def users_import(
    bundle: Annotated[Path, typer.Option(help="Bundle whose schema names the profile features.")],
    file: Annotated[Path, typer.Option(help="Users file: .parquet, .csv or .jsonl.")],
    store: StoreOption = None,
) -> None:
    """Store each user's profile features (the schema's user features) for the service."""
    loaded = bundle_or_exit(bundle)
    schema = loaded.encoder.schema
    catalog = store_from(store)
    try:
        report = import_profiles(loaded, read_rows(file, schema, key=schema.user_key), catalog)
    except (ReaderError, StoreError) as exc:
        fail(f"import failed: {exc}")
    finally:
        catalog.close()
    if report.skipped:
        console.print(f"[yellow]{report.skipped} rows skipped, e.g.:", report.examples)
    console.print(f"{report.stored} user profiles stored ({', '.join(report.names)})")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
