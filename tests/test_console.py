"""Consoles: laid out to the terminal on a terminal; records never wrapped when output goes to a pipe or file."""

from __future__ import annotations

import io

from rich.table import Table

from fxnas.console import make_console
from fxnas.experiment import Experiment

LONG = "[12] acc=96.1, loss=0.255, train_loss=0.3601, arch_loss=0.2012, " + ", ".join(
    f"res{i}.conv{j}=MB3E6" for i in range(4) for j in range(2))


class FakeTTY(io.StringIO):
    """A text buffer that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_piped_lines_and_tables_are_not_wrapped(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    buf = io.StringIO()
    console = make_console(file=buf)
    assert len(LONG) > 150
    console.print(LONG, markup=False, highlight=False)
    table = Table(title="best architecture")
    table.add_column("param")
    table.add_column("value")
    table.add_row("cells.0.edges.12.op.candidates.SEP5.separable.depthwise", LONG)
    console.print(table)
    lines = buf.getvalue().splitlines()
    assert lines[0] == LONG
    assert any(LONG in line and "cells.0.edges.12" in line for line in lines)  # one table row, one line


def test_piped_output_keeps_records_whole_when_columns_is_set(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    buf = io.StringIO()
    console = make_console(file=buf)
    assert console.width == 60
    console.print(LONG, markup=False, highlight=False)
    assert buf.getvalue().splitlines() == [LONG]


def test_terminal_output_still_wraps_to_its_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    buf = FakeTTY()
    console = make_console(file=buf)
    assert console.is_terminal and console.width == 80
    console.print(LONG, markup=False, highlight=False)
    assert len(buf.getvalue().splitlines()) > 1
    assert make_console(file=FakeTTY(), min_width=120).width == 120


def test_experiment_records_go_to_a_pipe_on_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("COLUMNS", raising=False)
    exp = Experiment(out_root=str(tmp_path), progress=False)  # its own console, on stderr (captured: a pipe)
    exp.log(LONG)
    assert capsys.readouterr().err.splitlines() == [LONG]
    assert (tmp_path / "exp" / "log.txt").read_text().rstrip("\n").endswith(LONG)
