"""``fxnas search``: run an experiment config (a YAML path or a packaged config name) and show the best arch."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from ..console import make_console
from ..errors import FxnasError
from .common import epilog, import_option


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def summary_table(summary: dict[str, Any]) -> Table:
    """The best arch (param → value) and its metrics as a rich table."""
    table = Table(title="best architecture", show_lines=False)
    table.add_column("param / metric", style="cyan", no_wrap=True)
    table.add_column("value", style="bold")
    for k, v in summary["arch"].items():
        table.add_row(str(k), _fmt(v))
    table.add_section()
    for k, v in summary["metrics"].items():
        table.add_row(str(k), _fmt(v))
    for k, v in summary.get("test_metrics", {}).items():
        table.add_row(f"test_{k} (exported subnet)", _fmt(v))
    return table


@click.command("search", epilog=epilog("fxnas search -c demo -o trainer.lr=0.05 --name demo_lr"))
@import_option
@click.option("-c", "--config", "config", required=True, metavar="FILE|NAME",
              help="experiment YAML, or the name of a packaged config (e.g. demo)")
@click.option("-o", "--override", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="override a config value (YAML-typed), e.g. -o trainer.epochs=5; repeatable")
@click.option("--resume", is_flag=True, help="continue the run from its checkpoint.pt")
@click.option("--overwrite", is_flag=True, help="start again even if the output folder holds a checkpoint")
@click.option("--name", default=None, help="experiment name (output folder); default: the config's name")
@click.option("--out-root", default=None, help="root of the output folders (default: the config's, exp/)")
@click.option("--quiet", is_flag=True, help="no progress bars or per-result lines")
@click.option("--debug", is_flag=True, help="show Python tracebacks instead of one-line errors")
@click.pass_context
def search(ctx: click.Context, imports: tuple[str, ...], config: str, overrides: tuple[str, ...], resume: bool,
           overwrite: bool, name: str | None, out_root: str | None, quiet: bool, debug: bool) -> None:
    """Run a NAS experiment; outputs go to <out_root>/<name>/ (log, history, arch_best.yaml, checkpoints)."""
    from ..config import build_experiment, load_config

    debug = debug or bool(ctx.obj and ctx.obj.get("debug"))
    console = make_console(stderr=True, quiet=quiet)
    try:
        cfg = load_config(config, overrides, name=name, out_root=out_root)
        exp = build_experiment(cfg, console=console, progress=not quiet)
        summary = exp.run(resume=resume, overwrite=overwrite)
    except FxnasError as exc:
        if debug:
            raise
        click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
        ctx.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted; continue with --resume", err=True)
        ctx.exit(130)
    except Exception as exc:  # a bug or a failure in user code: one line unless --debug
        if debug:
            raise
        click.echo(f"Error: {type(exc).__name__}: {' '.join(str(exc).split())} (rerun with --debug for the "
                   f"traceback)", err=True)
        ctx.exit(1)
    if exp.distributed.writer:  # under torchrun, rank 0 reports for every rank
        make_console().print(summary_table(summary))
        click.echo(f"outputs: {summary['out_dir']}")
