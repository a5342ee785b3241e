"""``fxnas pipeline``: run a pipeline of named steps (search, retrain, export, profile...) in dependency order."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from ..errors import FxnasError
from ..progress import make_console
from .common import epilog, import_option


def _brief(outputs: Any) -> str:
    if not isinstance(outputs, dict):
        return ""
    text = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, float) else f'{v:.4g}'}" for k, v in outputs.items()
                     if isinstance(v, (int, float, str)) and not isinstance(v, bool))
    return text if len(text) <= 160 else text[:157] + "..."


def report_table(report: dict[str, dict[str, Any]]) -> Table:
    """One row per step: status and its outputs (or why it failed / did not run)."""
    table = Table(title="pipeline")
    for col in ("step", "status", "outputs / reason"):
        table.add_column(col, overflow="fold")
    for name, s in report.items():
        table.add_row(name, s["status"], s.get("reason") or _brief(s.get("outputs")))
    return table


@click.command("pipeline", epilog=epilog("fxnas pipeline -c pipe.yaml -o params.epochs=5 --force retrain"))
@import_option
@click.option("-c", "--config", "config", required=True, metavar="FILE", help="pipeline YAML")
@click.option("-o", "--override", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="override a pipeline value (YAML-typed), e.g. -o steps.retrain.epochs=3; repeatable")
@click.option("--force", multiple=True, metavar="STEP", help="run STEP again even when it is up to date; repeatable")
@click.option("--name", default=None, help="pipeline name (output folder); default: the file's name")
@click.option("--out-root", default=None, help="root of the output folders (default: the config's, pipelines/)")
@click.option("--quiet", is_flag=True, help="no per-step lines")
@click.pass_context
def pipeline(ctx: click.Context, imports: tuple[str, ...], config: str, overrides: tuple[str, ...],
             force: tuple[str, ...], name: str | None, out_root: str | None, quiet: bool) -> None:
    """Run the steps of a pipeline; a rerun skips the steps whose inputs did not change. Exits with 1 when a
    step failed (the steps that do not depend on it still run)."""
    from ..pipeline import load_pipeline, run_pipeline

    debug = bool(ctx.obj and ctx.obj.get("debug"))
    console = make_console(stderr=True, quiet=quiet)
    try:
        cfg = load_pipeline(config, overrides, name=name, out_root=out_root)
        report = run_pipeline(cfg, console=console, progress=not quiet, force=force)
    except FxnasError as exc:
        if debug:
            raise
        click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
        ctx.exit(2)
    make_console(stderr=False).print(report_table(report))
    if any(s["status"] in ("failed", "blocked") for s in report.values()):
        ctx.exit(1)
