"""``fxnas tune``: tune an experiment's config keys or an external command's arguments (a tune config)."""

from __future__ import annotations

import click

from ..errors import FxnasError
from ..progress import make_console
from .common import epilog, import_option


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the tune run prints its own lines."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@click.command("tune", epilog=epilog("fxnas tune -c tune.yaml -o budget=30 -o 'optim.sampler=NSGAII'"))
@import_option
@click.option("-c", "--config", "config", required=True, metavar="FILE", help="tune config YAML")
@click.option("-o", "--override", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="override a tune config value (YAML-typed), e.g. -o budget=10; repeatable")
@click.option("--resume", is_flag=True, help="continue the run from its checkpoint.pt")
@click.option("--overwrite", is_flag=True, help="start again even if the output folder holds a checkpoint")
@click.option("--name", default=None, help="run name (output folder); default: the config's name")
@click.option("--out-root", default=None, help="root of the output folders (default: the config's, tune/)")
@click.option("--quiet", is_flag=True, help="no progress bar or per-trial lines")
@click.pass_context
def tune(ctx: click.Context, imports: tuple[str, ...], config: str, overrides: tuple[str, ...], resume: bool,
         overwrite: bool, name: str | None, out_root: str | None, quiet: bool) -> None:
    """Tune with a search optimizer (Optuna TPE by default); outputs go to <out_root>/<name>/ (history.jsonl,
    best.yaml, one folder per trial)."""
    from ..tune import build_tuner, load_tune_config

    debug = bool(ctx.obj and ctx.obj.get("debug"))
    console = make_console(stderr=True, quiet=quiet)
    quiet_optuna()
    try:
        cfg = load_tune_config(config, overrides, name=name, out_root=out_root)
        summary = build_tuner(cfg, console=console, progress=not quiet).run(resume=resume, overwrite=overwrite)
    except FxnasError as exc:
        if debug:
            raise
        click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
        ctx.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted; continue with --resume", err=True)
        ctx.exit(130)
    for k, v in summary["params"].items():
        click.echo(f"{k} = {v}")
    click.echo(", ".join(f"{k}={v:.4g}" for k, v in summary["metrics"].items()))
    click.echo(f"trials: {summary['trials']} ({summary['pruned']} pruned, {summary['failed']} failed); "
               f"outputs: {summary['out_dir']}")
