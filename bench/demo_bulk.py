"""The real ``generate_demo_data --bulk`` into an empty PostgreSQL registry: studies/s and CPU per study.

    .venv/bin/python bench/demo_bulk.py --studies 100000 [--jobs 1,2] [--repo PATH ...] [--rounds 1]

For each repository checkout (``--repo``, default this one; give two to compare before and after in the same run),
each ``--jobs`` value and each round: a fresh database copied from a migrated template of that checkout (on
DATABASE_URL's server, default dosereg@127.0.0.1:5432; dropped afterwards), then ``manage.py generate_demo_data
--bulk`` run there as a separate process.  The machine is shared, so wall-clock rates are noisy; beside them it
prints CPU seconds per study: the command's processes (their rusage, forked recorders included) and the PostgreSQL
backends of the run's database (``/proc/<pid>/stat`` of every backend of that database and of the parallel workers
they lead, sampled every 0.1 s: a backend's last tenth of a second before it exits is not counted).  The server's
shared processes (checkpointer, WAL writer) are left out.  Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
NOTE = re.compile(r"indexes left out|demo studies for|post-commit steps|fast writer|recording service")


def _pg_cpu_sampler(db: str, stop: threading.Event, seen: dict[int, float]) -> None:
    """Until ``stop``: the CPU seconds of each backend of ``db`` (and of parallel workers led by one), kept at
    their last value, so backends that have exited still count."""
    tag = f" {db} "
    while not stop.wait(0.1):
        leaders = set(seen)
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if not cmd.startswith("postgres: "):
                    continue
                ours = tag in cmd + " " or any(f"parallel worker for PID {p}" in cmd for p in leaders)
                if not ours:
                    continue
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seen[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _admin(url: str, *args: str) -> None:
    parts = urlsplit(url)
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    subprocess.run([args[0], "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
                    "-U", parts.username or "dosereg", *args[1:]], check=True, env=env, capture_output=True)


def _with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + db))


def run_once(repo: Path, url: str, template: str, db: str, studies: int, jobs: int, extra: list[str]) -> dict:
    _admin(url, "createdb", "-T", template, db)
    env = {**os.environ, "DATABASE_URL": _with_db(url, db)}
    env.pop("CELERY_BROKER_URL", None)
    seen: dict[int, float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_pg_cpu_sampler, args=(db, stop, seen), daemon=True)
    sampler.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "manage.py", "generate_demo_data", "--bulk", "--studies", str(studies),
                           "--year", "2024", "--jobs", str(jobs), *extra], cwd=repo, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop.set()
    sampler.join()
    _admin(url, "dropdb", db)
    if proc.returncode:
        raise SystemExit(f"{repo}: generate_demo_data failed:\n{proc.stdout}\n{proc.stderr}")
    py = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "py": py, "pg": sum(seen.values()), "load": load, "last": proc.stdout.strip().splitlines()[-1],
            "notes": [line for line in proc.stderr.splitlines() if NOTE.search(line)]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--jobs", default="1")
    parser.add_argument("--repo", action="append", default=[])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--extra", default="", help="more generate_demo_data options, one string")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://dosereg:dosereg@127.0.0.1:5432/dosereg")
    repos = [Path(r).resolve() for r in args.repo] or [REPO]
    templates = {}
    for k, repo in enumerate(repos):
        templates[repo] = f"bench_demo_tpl_{os.getpid()}_{k}"
        _admin(url, "createdb", templates[repo])
        env = {**os.environ, "DATABASE_URL": _with_db(url, templates[repo])}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=repo, env=env, check=True)
    print(f"generate_demo_data --bulk --studies {args.studies} into an empty PostgreSQL registry; "
          f"{os.cpu_count()} CPUs")
    print(f"{'checkout':28} {'jobs':>4} {'wall s':>7} {'studies/s':>9} {'py ms/st':>8} {'pg ms/st':>8} "
          f"{'load':>5}  result")
    try:
        for rnd in range(args.rounds):
            for jobs in [int(j) for j in args.jobs.split(",")]:
                for repo in repos:
                    db = f"bench_demo_{os.getpid()}_{rnd}_{jobs}"
                    r = run_once(repo, url, templates[repo], db, args.studies, jobs, args.extra.split())
                    n = args.studies
                    print(f"{str(repo)[-28:]:28} {jobs:4d} {r['wall']:7.1f} {n / r['wall']:9.0f} "
                          f"{r['py'] / n * 1000:8.3f} {r['pg'] / n * 1000:8.3f} {r['load']:5.1f}  {r['last']}",
                          flush=True)
                    for note in r["notes"]:
                        print(f"    {note}")
    finally:
        for template in templates.values():
            _admin(url, "dropdb", "--if-exists", template)
    return 0


if __name__ == "__main__":
    sys.exit(main())
