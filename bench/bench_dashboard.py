"""How fast the dashboard serves a large search: a store seeded with 10,000 candidates, its pages timed.

Seeds a SQLite store in a temporary workspace (one supernet with a teacher, one search of ``--candidates``
candidates: 90% done with a FID and a KID, 5% failed, 5% infeasible; seeded, so every run sees the
same data), then times, through the web app in-process (FastAPI's test client: no network), the
median of ``--repeats`` requests of each page:

- the search page (summary, front, interactive chart data for every candidate, first table page);
- the search page sorted by FID, descending, on its 100th page (the database sorts and pages);
- the search page with the front members only;
- ``GET /api/searches/{id}/candidates`` sorted by FID at offset 5,000;
- the CSV download of every candidate;
- the comparison of the search with a second one of 1,000 candidates.

Wall time and CPU time are both printed: on a shared machine the CPU time (of this process, which
runs the server and the client) is the figure other programs do not inflate.

Run from the repository root:  python bench/bench_dashboard.py [--candidates 10000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

M = 1_000_000
CONFIG_WIDTHS = (8, 12, 16)


def seed_search(store, candidates: int, seed: int) -> int:
    """A search of ``candidates`` distinct configs: 90% done (fid, kid), 5% failed, 5% infeasible."""
    from sqlalchemy import bindparam

    from nas.store.models import candidates as table

    rng = random.Random(seed)
    search = store.create_search("bench", budgets=[300 * M, 600 * M], objectives=["fid"], strategy="random",
                                 trials=candidates, seed=seed, max_attempts=1)
    configs = set()
    while len(configs) < candidates:  # 3^12 > 500,000 configs of 12 positions
        configs.add("_".join(str(rng.choice(CONFIG_WIDTHS)) for _ in range(12)))
    rows = []
    for config in sorted(configs):
        macs = sum(int(w) for w in config.split("_")) * 4 * M
        infeasible = rng.random() < 0.05
        rows.append((config, macs, macs // 1000, "infeasible", None, "over every budget") if infeasible
                    else (config, macs, macs // 1000))
    store.add_candidates(search.id, rows)
    queued = store.candidates(search.id, "queued")
    now = time.time()
    updates = []
    for record in queued:
        failed = rng.random() < 0.05 / 0.95
        fid = 30.0 + 5e9 / record.macs * rng.uniform(0.8, 1.2)
        updates.append({"cid": record.id, "status": "failed" if failed else "done",
                        "metrics": {} if failed else {"fid": fid, "kid": fid / 1000},
                        "error": "RuntimeError: out of memory" if failed else None,
                        "evaluator": None if failed else "fid/bench", "attempts": 1, "finished_at": now,
                        "eval_seconds": 1.0})
    with store.db.write() as conn:  # one statement for all: seeding, not what is measured
        conn.execute(table.update().where(table.c.id == bindparam("cid")).values(
            status=bindparam("status"), metrics=bindparam("metrics"), error=bindparam("error"),
            evaluator=bindparam("evaluator"), attempts=bindparam("attempts"), finished_at=bindparam("finished_at"),
            eval_seconds=bindparam("eval_seconds")), updates)
    store.set_search_teacher(search.id, {"fid": 28.0, "kid": 0.028}, "fid/bench", "train2")
    return search.id


def seed_workspace(root: Path, candidates: int):
    from nas.store import Store
    from nas.workspace import Workspace

    workspace = Workspace.resolve(root)
    teacher = root / "teacher.pt"
    root.mkdir(parents=True, exist_ok=True)
    teacher.write_bytes(b"bench-teacher")
    from foundation.hashing import bytes_sha256

    with Store(workspace.database_url) as store:
        store.register_supernet("bench", architecture="mobile_resnet", space="channels-16", checkpoint="/bench/sn.pt",
                                checkpoint_sha256="ab" * 32, hparams={"ngf": 16, "n_blocks": 6},
                                dataset={"size": 256, "search_split": "train2"}, metrics=["fid", "kid"],
                                teacher={"path": str(teacher), "sha256": bytes_sha256(b"bench-teacher"),
                                         "architecture": "resnet", "hparams": {"ngf": 64}, "reference_arch": None,
                                         "macs": 56_800 * M, "params": 11_378_179, "size": [256, 256]})
        big = seed_search(store, candidates, 0)
        small = seed_search(store, max(1, candidates // 10), 1)
    return workspace, big, small


def timed(client, url: str, repeats: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds (this process, server and client) of ``repeats`` GETs of ``url`` (after one
    warm-up), and the answer's size in bytes. CPU time is what a busy machine does not inflate."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        client.get(url)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), len(response.content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    from webapp.app import create_web_app

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        workspace, big, small = seed_workspace(Path(folder) / "ws", args.candidates)
        print(f"seeded {args.candidates} + {max(1, args.candidates // 10)} candidates in "
              f"{time.perf_counter() - start:.1f} s")
        pages = [("search page", f"/searches/{big}"),
                 ("search page, sorted by fid desc, page 100", f"/searches/{big}?sort=metric:fid&desc=true&page=100"),
                 ("search page, front members only", f"/searches/{big}?front=true"),
                 ("API candidates, sorted by fid, offset 5000",
                  f"/api/searches/{big}/candidates?sort=metric:fid&offset=5000&limit=100"),
                 ("CSV of every candidate", f"/searches/{big}/candidates.csv"),
                 ("compare with a second search", f"/compare?search={big}&search={small}")]
        with TestClient(create_web_app(workspace), base_url="http://127.0.0.1:8765") as client:
            print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.2f}; python {platform.python_version()}")
            print("| request | median wall time | median CPU time | size |")
            print("|---|---:|---:|---:|")
            for label, url in pages:
                wall, cpu, size = timed(client, url, args.repeats)
                print(f"| {label} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms | {size / 1024:.0f} KiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
