"""The ``recsys`` command: this package's serving commands (one module per command group),
plus the commands other installed packages add through the ``recsys.commands`` entry-point
group: `training` adds ``data``, ``train``, ``compare`` and ``demo`` (pyproject.toml). The
service never imports `training`; where a plugin cannot be loaded (the API image has no
`training` package), its command still exists and says how to install it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points

import typer

from service.cli import bench, bundle, experiment, index, lite, rollout, serve, users
from service.cli.common import fail

PLUGIN_GROUP = "recsys.commands"
INSTALL_HINT = "pip install 'recsys[train]' (or: make install)"
SERVING_GROUPS = (serve, index, rollout, experiment, bundle, users, lite, bench)


def build_app(plugins: Iterable[EntryPoint] | None = None) -> typer.Typer:
    app = typer.Typer(
        help="Recommendation system: data, training, bundles, indexing, serving.",
        no_args_is_help=True,
    )
    for group in SERVING_GROUPS:
        group.register(app)
    for plugin in entry_points(group=PLUGIN_GROUP) if plugins is None else plugins:
        add_plugin(app, plugin)
    return app


def add_plugin(app: typer.Typer, plugin: EntryPoint) -> None:
    """Add the command (a function) or command group (a Typer app) ``plugin`` names."""
    try:
        command = plugin.load()
    except ImportError as exc:
        missing = _missing(plugin.name, exc)
        settings = {"allow_extra_args": True, "ignore_unknown_options": True}
        app.command(plugin.name, context_settings=settings, add_help_option=False)(missing)
        return
    if isinstance(command, typer.Typer):
        app.add_typer(command, name=plugin.name)
    else:
        app.command(plugin.name)(command)


def _missing(name: str, exc: ImportError) -> Callable[[], None]:
    def missing() -> None:
        fail(f"`recsys {name}` is not installed here ({exc}): {INSTALL_HINT}", 2)

    missing.__doc__ = f"Not installed here: {INSTALL_HINT}"
    return missing


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    build_app()()
