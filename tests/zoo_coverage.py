"""Measure the timm zoo test model by model and print the coverage tables of ``docs/models.md``.

Each model of ``tests/test_zoo_timm.py`` runs in a pytest process of its own (``FXNAS_ZOO=<model>``, xfail
marks ignored so the real outcome shows) under a wall-clock limit, one torch thread each. Results are appended
to a JSON-lines file as each model finishes, so an interrupted measurement resumes where it stopped::

    python tests/zoo_coverage.py --out zoo.jsonl --jobs 2 --limit 600    # measure (resumes)
    python tests/zoo_coverage.py --out zoo.jsonl --table                 # the tables, from what was measured
    python tests/zoo_coverage.py --out zoo.jsonl --excluded              # EXCLUDED entries for what failed
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = {  # test function (and pattern) → the stage's row in the table
    "test_trace_equals_eager": "trace ≡ eager",
    "test_pattern_finds_what_a_plain_count_finds-conv": "`conv` finds every standard conv",
    "test_pattern_finds_what_a_plain_count_finds-dwconv": "`dwconv` finds every depthwise conv",
    "test_pattern_finds_what_a_plain_count_finds-linear": "`linear` finds every linear",
    "test_all_orig_equals_original": "all-ORIG ≡ model",
    "test_sampled_equals_supernet_and_onnx": "sampled ≡ supernet, ONNX ≡ torch",
}


def stage_key(testcase: ET.Element) -> str:
    """``test_x[model-conv]`` → ``test_x-conv``; ``test_x[model]`` → ``test_x``."""
    name = testcase.get("name", "")
    func, _, params = name.partition("[")
    pattern = params.rstrip("]").rpartition("-")[2] if "-" in params else ""
    return f"{func}-{pattern}" if pattern in ("conv", "dwconv", "linear") else func


def first_line(text: str) -> str:
    """The message's first line that says something, shortened for a table cell."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln[2:].strip() for ln in lines if ln.startswith("E ")]  # pytest's "E   ..." lines
    return (errors or lines or [""])[0][:160]


def measure(model: str, limit: float) -> dict:
    """Run one model's zoo tests in a fresh process; its stages' outcomes, messages and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", str(HERE / "test_zoo_timm.py"), "-q", "-m", "", "--runxfail",
               "-p", "no:cacheprovider", f"--junitxml={xml}", "-o", "junit_family=xunit1"]
        env = {**os.environ, "FXNAS_ZOO": model, "OMP_NUM_THREADS": "1"}
        start = time.perf_counter()
        try:
            subprocess.run(cmd, env=env, cwd=HERE.parent, capture_output=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return {"model": model, "timeout": limit, "seconds": round(time.perf_counter() - start, 1)}
        seconds = round(time.perf_counter() - start, 1)
        if not xml.exists():
            return {"model": model, "error": "pytest wrote no report", "seconds": seconds}
        stages = {}
        for tc in ET.parse(xml).getroot().iter("testcase"):
            bad = next((e for e in (tc.find("failure"), tc.find("error")) if e is not None), None)
            skip = tc.find("skipped")
            outcome = "failed" if bad is not None else "skipped" if skip is not None else "passed"
            msg = first_line(bad.get("message", "") + "\n" + (bad.text or "")) if bad is not None else ""
            stages[stage_key(tc)] = {"outcome": outcome, "message": msg}
        return {"model": model, "stages": stages, "seconds": seconds}


def load(out: Path) -> dict[str, dict]:
    """What was measured so far, by model (the last record of a model wins)."""
    if not out.exists():
        return {}
    return {r["model"]: r for r in map(json.loads, out.read_text().splitlines()) if r}


def zoo_test():
    """The timm zoo test module (its model list and TRACER map)."""
    sys.path.insert(0, str(HERE))
    import test_zoo_timm

    return test_zoo_timm


def models() -> list[str]:
    """Every model of the timm zoo test, default and slow."""
    return zoo_test()._all()


def passes_all(rec: dict) -> bool:
    """Every stage of the model passed."""
    st = rec.get("stages") or {}
    return len(st) == len(STAGES) and all(s["outcome"] == "passed" for s in st.values())


def first_failure(rec: dict) -> str:
    """The first stage that failed (in the tests' order) and why, or why the model was not measured."""
    if "timeout" in rec:
        return f"over {int(rec['timeout'])} s per model on one CPU core"
    if "error" in rec:
        return rec["error"]
    for key, row in STAGES.items():
        s = rec["stages"].get(key)
        if s and s["outcome"] != "passed":
            return f"{row}: {s['message']}"
    return ""


def table(recs: dict[str, dict]) -> str:
    """The markdown of docs/models.md's coverage section: overall, per stage, and each failing model."""
    measured = [r for r in recs.values() if "stages" in r]
    n, total = len(measured), len(recs)
    other = zoo_test().TRACER
    traced = [r for r in measured if r["stages"].get("test_trace_equals_eager", {}).get("outcome") == "passed"
              and r["model"] not in other]
    lines = [f"| timm, {total} models | |", "|---|---|",
             f"| pass every stage | {sum(map(passes_all, recs.values()))} / {total} |",
             f"| trace with fx and the leaf rules | {len(traced)} / {total} |",
             f"| of those, pass every stage | {sum(map(passes_all, traced))} / {len(traced)} |",
             f"| traced with another tracer (TRACER) | {', '.join(f'{m}: {t}' for m, t in other.items()) or 0} |",
             f"| not measured (time limit) | {total - n} |", "", "| stage | pass |", "|---|---|"]
    for key, row in STAGES.items():
        ok = sum(r["stages"].get(key, {}).get("outcome") == "passed" for r in measured)
        lines.append(f"| {row} | {ok} / {total} |")
    lines += ["", "| model | first failing stage |", "|---|---|"]
    lines += [f"| `{r['model']}` | {first_failure(r).replace('|', '/')} |"
              for r in sorted(recs.values(), key=lambda r: r["model"]) if not passes_all(r)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("zoo_coverage.jsonl"))
    ap.add_argument("--jobs", type=int, default=1, help="models measured at once (one core each)")
    ap.add_argument("--limit", type=float, default=600.0, help="seconds per model before it counts as too slow")
    ap.add_argument("--only", default="", help="comma-separated models (default: every model, resuming)")
    ap.add_argument("--table", action="store_true", help="print the tables of what was measured and exit")
    ap.add_argument("--excluded", action="store_true", help="print EXCLUDED entries for the failures and exit")
    args = ap.parse_args()
    if args.table or args.excluded:
        recs = load(args.out)
        if args.table:
            print(table(recs))
        else:
            for r in sorted(recs.values(), key=lambda r: r["model"]):
                if not passes_all(r):
                    print(f"    {r['model']!r}: {first_failure(r)[:110]!r},")
        return
    done = load(args.out)
    todo = [m for m in (args.only.split(",") if args.only else models()) if args.only or m not in done]

    def one(model: str) -> None:
        rec = measure(model, args.limit)
        with args.out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"{model}: {'pass' if passes_all(rec) else first_failure(rec)} ({rec['seconds']} s)", flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, todo))


if __name__ == "__main__":
    main()
