"""Benchmark of the dashboard (issue 12). Prints two things:

1. **Page data for 10 000 candidates**: a synthetic run store (written through the real
   `RunStore`: 10 000 finished candidates, parents, rewrite records, metrics) served by the
   ``genomorph dashboard`` command in its own process; the median time of the requests the
   page makes: the first full load of the run's data, the strategy panels, an incremental poll
   and a candidate's detail. Target: the full page data in <= 200 ms.
2. **What polling costs a running search**: the same digits search run with and without a
   dashboard polling it (a ``genomorph dashboard`` process, and a client making the page's
   requests every ``--poll`` seconds: the page data since the last poll, and the panels when
   something changed), alternated A B / B A. Prints the searches' wall times side by side and
   their median ratio; the search's own CPU time with and without (the work it does, which
   a loaded machine's scheduling noise does not blur as it blurs wall time); and the CPU
   the dashboard spent answering the polls (after its start-up and the page load) as a share
   of the search's wall time. Target: <= 1 % slower.

    python bench/bench_dashboard.py                    # both parts (about 4 minutes on 2 cores)
    python bench/bench_dashboard.py --part page --candidates 10000
    python bench/bench_dashboard.py --part polling --repeats 5 --poll 2
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dashboard"))

from _timing import table  # noqa: E402
from dashboard_helpers import make_run  # noqa: E402

GENOMORPH = [sys.executable, "-m", "genomorph.cli"]
SEARCH = ["search", "--strategy", "nash", "--dataset", "digits", "--set", "steps=2", "--set", "children=2"]


class Dashboard:
    """``genomorph dashboard RUN_DIR --port 0`` in its own process, as a user starts it."""

    def __init__(self, run_dir: Path, poll: float) -> None:
        self.process = subprocess.Popen(
            [*GENOMORPH, "dashboard", str(run_dir), "--port", "0", "--poll", str(poll)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if match := re.search(r"http://127\.0\.0\.1:(\d+)/", line):
                self.port = int(match.group(1))
                return
        sys.exit("the dashboard did not start")

    def get(self, path: str) -> tuple[float, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        start = time.perf_counter()
        connection.request("GET", path)
        body = connection.getresponse().read()
        elapsed = time.perf_counter() - start
        connection.close()
        return elapsed, body

    def cpu(self) -> float:
        """CPU seconds (user + system) the dashboard process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float:
        """Stop it; returns its CPU seconds (user + system)."""
        self.process.send_signal(signal.SIGINT)
        _, _, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = 0
        return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------- part 1
def page_part(candidates: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        start = time.perf_counter()
        make_run(run_dir, candidates, meta=lambda i: {"role": "child", "generation": i // 500}).close()
        print(f"wrote a synthetic store of {candidates:,} candidates in {time.perf_counter() - start:.1f} s")
        dashboard = Dashboard(run_dir, 2.0)
        try:
            # the first load: the server read the store in the background since it started
            first, body = dashboard.get("/api/runs/0/page")
            first_mb = len(body) / 1e6
            page = json.loads(body)
            assert len(page["candidates"]) == candidates, "the page data is incomplete"
            cursor = page["cursor"]
            requests = {
                "full page data": "/api/runs/0/page",
                "strategy panels": "/api/runs/0/panels",
                "incremental poll": f"/api/runs/0/page?since={cursor}",
                "candidate detail": f"/api/runs/0/candidates/{candidates - 1}",
            }
            rows, medians = [], {}
            for name, path in requests.items():
                times, size = [], 0
                for _ in range(repeats):
                    elapsed, body = dashboard.get(path)
                    times.append(elapsed)
                    size = len(body)
                medians[name] = statistics.median(times)
                rows.append(
                    [name, f"{1000 * medians[name]:.1f}", f"{1000 * min(times):.1f}", f"{size / 1e6:.2f}"]
                )
        finally:
            dashboard.stop()
    rows.insert(0, ["first page data after start", f"{1000 * first:.1f}", "", f"{first_mb:.2f}"])
    print(table(["request", "median ms", "min ms", "MB"], rows))
    verdict = "ok" if medians["full page data"] <= 0.2 else "OVER TARGET"
    print(
        f"full page data for {candidates:,} candidates: {1000 * medians['full page data']:.0f} ms (target <= 200 ms: {verdict})"
    )
    return medians


# ---------------------------------------------------------------------------- part 2
def _poll(dashboard: Dashboard, every: float, stop: threading.Event, counts: list[float]) -> None:
    """What the open page does: its data since the last poll, the panels when something changed.
    ``counts``: [polls, the dashboard's CPU seconds once the page was loaded]."""
    dashboard.get("/")
    dashboard.get("/static/plotly.min.js")
    counts[1] = dashboard.cpu()
    cursor = None
    while not stop.wait(every):
        _, body = dashboard.get("/api/runs/0/page" + ("" if cursor is None else f"?since={cursor}"))
        page = json.loads(body)
        counts[0] += 1
        if page.get("cursor") != cursor:
            cursor = page.get("cursor")
            dashboard.get("/api/runs/0/panels")


def _search(out: Path, poll: float | None) -> tuple[float, float, float, int]:
    """Run the search; returns (its wall_s from summary.json, its CPU s, the dashboard's CPU s
    spent on polls (after start-up and the page load), polls made)."""
    dashboard = Dashboard(out, poll) if poll else None
    stop, counts = threading.Event(), [0, 0.0]
    poller = threading.Thread(target=_poll, args=(dashboard, poll, stop, counts)) if dashboard else None
    if poller:
        poller.start()
    search = subprocess.Popen(
        [*GENOMORPH, *SEARCH, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert search.stderr is not None
    stderr = search.stderr.read()
    _, status, usage = os.wait4(search.pid, 0)
    search.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    cpu = 0.0
    if poller and dashboard:
        poller.join()
        cpu = dashboard.cpu() - counts[1]
        dashboard.stop()
    if search.returncode != 0:
        sys.exit(f"the search failed:\n{stderr[-2000:].decode(errors='replace')}")
    wall = float(json.loads((out / "summary.json").read_text())["wall_s"])
    return wall, usage.ru_utime + usage.ru_stime, cpu, int(counts[0])


def polling_part(repeats: int, poll: float) -> dict[str, float]:
    without, with_, cpus, polls = [], [], [], []
    search_cpu: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(repeats):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for polled in order:
                wall, own, cpu, n = _search(Path(tmp) / f"r{round_}-{int(polled)}", poll if polled else None)
                (with_ if polled else without).append(wall)
                search_cpu[polled].append(own)
                if polled:
                    cpus.append(cpu)
                    polls.append(n)
    ratios = [b / a for a, b in zip(without, with_, strict=True)]
    cpu_ratios = [b / a for a, b in zip(search_cpu[False], search_cpu[True], strict=True)]
    rows = [[str(i), f"{a:.2f}", f"{b:.2f}", f"{r:.3f}", f"{ca:.2f}", f"{cb:.2f}", f"{c:.2f}", str(n)]
            for i, (a, b, r, ca, cb, c, n) in enumerate(
                zip(without, with_, ratios, search_cpu[False], search_cpu[True], cpus, polls, strict=True))]  # fmt: skip
    header = [
        "round",
        "wall s",
        "wall s, polled",
        "ratio",
        "CPU s",
        "CPU s, polled",
        "polls' CPU s",
        "polls",
    ]
    print(table(header, rows))
    median = statistics.median(ratios)
    share = statistics.median(c / w for c, w in zip(cpus, with_, strict=True))
    print(f"median ratio polled / not polled: {median:.3f} ({100 * (median - 1):+.1f} %; target <= +1 %)")
    print(f"median ratio of the search's own CPU time, polled / not: {statistics.median(cpu_ratios):.3f}")
    print(f"CPU the dashboard spent answering polls: {100 * share:.2f} % of the search's wall time (median)")
    return {"median_ratio": median, "cpu_ratio": statistics.median(cpu_ratios), "dashboard_cpu_share": share}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["page", "polling", "all"], default="all")
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument(
        "--repeats", type=int, default=3, help="rounds (polling) / requests per kind (page: x5)"
    )
    parser.add_argument(
        "--poll", type=float, default=2.0, help="seconds between the page's polls (its default)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    if args.part in ("page", "all"):
        page_part(args.candidates, 5 * args.repeats)
    if args.part in ("polling", "all"):
        polling_part(args.repeats, args.poll)


if __name__ == "__main__":
    main()
