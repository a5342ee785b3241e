"""The report in a real headless browser (Debian's chromium): renders without console errors, plots in the
DOM, a screenshot saved under the test's tmp_path."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from fxnas.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


def chromium(url: str, *args: str) -> tuple[str, str]:
    """(stdout, stderr) of headless chromium on ``url``; console messages go to stderr as INFO:CONSOLE lines."""
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                        "--v=0", *args, url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, r.stderr


def console_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def test_console_errors_are_seen(tmp_path: Path) -> None:
    """The check below can fail: a page that logs an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("broken page")</script></body></html>')
    _, err = chromium(bad.as_uri(), "--dump-dom")
    assert any("broken page" in ln for ln in console_lines(err))


def test_report_renders_with_its_plots(finished_runs, tmp_path: Path) -> None:
    for name in ("grad", "pareto"):
        page = write_report(finished_runs[name], tmp_path / f"{name}.html")
        dom, err = chromium(page.as_uri(), "--dump-dom")
        assert console_lines(err) == [], console_lines(err)
        assert dom.count('data-plot="metric history"') == 1 and "<svg" in dom
        assert dom.count("<svg") == dom.count("data-plot=")  # every plot is an inline SVG the browser parsed
        if name == "grad":
            assert 'data-plot="alpha res1.conv1.alpha"' in dom
        else:
            assert 'data-plot="Pareto front"' in dom
        shot = tmp_path / f"{name}.png"
        _, err = chromium(page.as_uri(), f"--screenshot={shot}", "--window-size=1200,2400",
                          "--hide-scrollbars")
        assert console_lines(err) == []
        head = shot.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (1200, 2400)
        assert shot.stat().st_size > 50_000  # plots and tables drawn, not a blank page
