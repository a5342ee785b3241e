"""``fxnas report``: write an experiment's HTML report; ``--watch`` rewrites it while the search runs."""

from __future__ import annotations

import time

import click

from .common import epilog


@click.command("report", epilog=epilog("fxnas report exp/demo -o demo.html --watch 30"))
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output HTML file (default: FOLDER/report.html).")
@click.option("--watch", type=float, default=None, metavar="SECONDS",
              help="Rewrite the page every SECONDS until the run finishes (the page also reloads itself while "
                   "the run is unfinished).")
@click.option("--no-profile", is_flag=True, help="Do not rebuild the network (no slot table, no profile).")
def report(folder: str, out: str | None, watch: float | None, no_profile: bool) -> None:
    """Write a self-contained HTML report of the experiment in FOLDER: metric history, alpha trajectories,
    Pareto front, slot table, final arch with its profile, and the config. Open it in any browser."""
    from ..report.data import read_run
    from ..report.page import write_report

    while True:
        done = watch is None or read_run(folder, profile=False).finished  # read first: the last page shows it
        path = write_report(folder, out, profile=not no_profile)
        click.echo(f"report written to {path}")
        if done:
            return
        time.sleep(watch)
