"""The report page's content, read back from its HTML: plots, tables, finished vs running, nothing external."""

from __future__ import annotations

import json
import shutil
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import torch
from click.testing import CliRunner

from fxnas.cli.main import main
from fxnas.report import read_run, write_report
from fxnas.report.plots import softmax


class Page(HTMLParser):
    """Counts what a test asserts on: plots by name, table rows by class, refresh, external references."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.plots: list[str] = []
        self.rows: dict[str, int] = {}
        self.refresh = False
        self.refs: list[str] = []
        self._table: str | None = None
        self._in_body = False
        self.svgs = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if "data-plot" in a:
            self.plots.append(a["data-plot"])
        if tag == "svg":
            self.svgs += 1
        if tag == "table":
            self._table = a.get("class") or ""
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_body and self._table:
            self.rows[self._table] = self.rows.get(self._table, 0) + 1
        if tag == "meta" and a.get("http-equiv") == "refresh":
            self.refresh = True
        for k in ("src", "href", "xlink:href"):
            if k in a:
                self.refs.append(a[k])

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        if tag == "table":
            self._table = None


def test_gradient_run_page(finished_runs, tmp_path: Path) -> None:
    folder = finished_runs["grad"]
    page = Page(write_report(folder, tmp_path / "r.html").read_text())
    run = read_run(folder)
    alpha_names = list(run.alphas[-1]["softmax"])
    assert len(run.alphas) >= 3 and len(alpha_names) == 6  # a row per epoch, one alpha per slot
    first, last = run.alphas[0]["softmax"]["res1.conv1.alpha"], run.alphas[-1]["softmax"]["res1.conv1.alpha"]
    assert abs(sum(last) - 1) < 1e-5 and max(abs(a - b) for a, b in zip(first, last)) > 1e-3  # they moved
    assert "metric history" in page.plots
    assert sorted(p for p in page.plots if p.startswith("alpha ")) == sorted(f"alpha {n}" for n in alpha_names)
    assert page.svgs == 1 + len(alpha_names)
    assert page.rows["slots"] == 6 and not page.refresh  # finished: no reload
    assert all(r.startswith("#") for r in page.refs), page.refs  # self-contained: only in-page references
    slot = next(s for s in run.slots if s["name"] == "res2.conv1")
    assert slot["stride"] == 2 and slot["in_shape"] == [1, 8, 16, 16] and slot["chosen"] in slot["candidates"]
    assert run.profile is not None and run.profile["params"] == sum(
        p.numel() for p in torch.load(folder / "subnet.pt", weights_only=False).parameters())


def test_pareto_run_page(finished_runs, tmp_path: Path) -> None:
    folder = finished_runs["pareto"]
    page = Page(write_report(folder, tmp_path / "r.html").read_text())
    front = json.loads((folder / "pareto.json").read_text())["front"]
    assert "Pareto front" in page.plots and page.rows["pareto"] == len(front) >= 1
    assert not any(p.startswith("alpha ") for p in page.plots)


def test_softmax() -> None:
    v = [0.3, -1.0, 2.5]
    torch.testing.assert_close(torch.tensor(softmax(v)), torch.softmax(torch.tensor(v), 0))


def test_unfinished_run_reloads_and_watch_stops_when_done(finished_runs, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(finished_runs["pareto"], folder)
    summary = (folder / "summary.json").read_text()
    (folder / "summary.json").unlink()
    with open(folder / "history.jsonl", "a") as f:
        f.write('{"arch": {"stem.0": "NC')  # a line being written
    page = Page(write_report(folder, profile=False).read_text())
    assert page.refresh and "metric history" in page.plots
    assert len(read_run(folder, profile=False).history) == 5

    def finish() -> None:
        time.sleep(1.0)
        (folder / "summary.json").write_text(summary)

    t = threading.Thread(target=finish)
    t.start()
    r = CliRunner().invoke(main, ["report", str(folder), "--watch", "0.2", "--no-profile"])
    t.join()
    assert r.exit_code == 0, r.output
    assert r.output.count("report written to") >= 2  # rewritten while running, once more when done
    assert not Page((folder / "report.html").read_text()).refresh


def test_help_and_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["report", "--help"])
    assert r.output.rstrip().splitlines()[-1].strip().startswith("fxnas report ")
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 1 and "no config.yaml" in r.output
