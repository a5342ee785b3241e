"""Two tuning workers share one Optuna study on a throwaway PostgreSQL server (loopback only, a temporary data
directory, started and stopped by the test; run as an unprivileged user when the tests run as root)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL 15 server on 127.0.0.1 for this test; stopped and deleted afterwards."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL 15 is not installed (no {PG_BIN / 'initdb'})")
    pytest.importorskip("psycopg", reason="SQLAlchemy reaches postgresql:// URLs through psycopg (the test extra)")
    home = Path(tempfile.mkdtemp(prefix="fxnas-pg-"))
    run_as: dict = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        import pwd

        who = pwd.getpwnam("nobody")
        os.chown(home, who.pw_uid, who.pw_gid)
        run_as = {"user": who.pw_uid, "group": who.pw_gid, "extra_groups": []}
    data, port = home / "data", _free_port()

    def pg(*args: str) -> None:
        subprocess.run([str(PG_BIN / args[0]), *args[1:]], check=True, cwd=home, capture_output=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, **run_as)

    try:
        pg("initdb", "-D", str(data), "-U", "fxnas", "--auth=trust", "-E", "UTF8", "--no-sync")
        pg("pg_ctl", "-D", str(data), "-l", str(home / "server.log"), "-w", "-t", "60", "-o",
           f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        try:
            yield f"postgresql://fxnas@127.0.0.1:{port}/postgres"
        finally:
            pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _config(url: str, bowl: Path, out_root: Path, study: str, budget: int) -> dict:
    return {"target": {"type": "Command", "command": ["{python}", str(bowl)]}, "progress": False,
            "space": {"x": {"low": 0.0, "high": 1.0}, "y": {"low": 0.0, "high": 1.0}}, "budget": budget,
            "optim": {"type": "Optuna", "storage": url, "study": study, "sampler_options": {"n_startup_trials": 2}},
            "out_root": str(out_root)}


def test_two_tuners_share_one_study_on_postgresql(postgres_url, bowl, tmp_path):
    """Two workers in threads of this process (the default suite's short form of the test below)."""
    from fxnas.tune import build_tuner, load_tune_config

    tuners = [build_tuner(load_tune_config({**_config(postgres_url, bowl, tmp_path, "threads", 3), "seed": i,
                                            "name": f"t{i}"})) for i in range(2)]
    summaries: list = [None, None]

    def work(i: int) -> None:
        summaries[i] = tuners[i].run()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert [s["trials"] for s in summaries] == [3, 3]
    study = optuna.load_study(study_name="threads", storage=postgres_url)
    done = {(t.params["x"], t.params["y"]) for t in study.trials if t.state.name == "COMPLETE"}
    assert done == {(r.arch["x"], r.arch["y"]) for tu in tuners for r in tu.history} and len(done) == 6
    assert study.best_value == max(s["metrics"]["value"] for s in summaries)


@pytest.mark.slow
def test_two_workers_share_one_study_on_postgresql(postgres_url, bowl, tmp_path):
    """Two `fxnas tune` processes against one study."""
    cfg = {"target": {"type": "Command", "command": ["{python}", str(bowl)]}, "progress": False,
           "space": {"x": {"low": 0.0, "high": 1.0}, "y": {"low": 0.0, "high": 1.0}}, "budget": 4,
           "optim": {"type": "Optuna", "storage": postgres_url, "study": "shared",
                     "sampler_options": {"n_startup_trials": 3}}, "out_root": str(tmp_path / "runs")}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "fxnas", "tune", "-c", str(path), "--name", f"w{i}",
                                 "-o", f"seed={i}", "--quiet"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [w.communicate(timeout=300) for w in workers]
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, err
        assert "trials: 4" in out
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 8  # both workers' trials in the one study
    own = [[json.loads(s) for s in (tmp_path / "runs" / f"w{i}" / "history.jsonl").read_text().splitlines()]
           for i in range(2)]
    assert [len(h) for h in own] == [4, 4]
    params = {(t.params["x"], t.params["y"]) for t in done}
    assert params == {(r["arch"]["x"], r["arch"]["y"]) for h in own for r in h}
    assert len(params) == 8
    assert study.best_value == max(r["metrics"]["value"] for h in own for r in h)
