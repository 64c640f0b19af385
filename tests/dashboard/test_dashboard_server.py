"""The dashboard server over HTTP: only the given runs, no path traversal, messages not tracebacks."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import genomorph
from dashboard_helpers import get_json, make_run, raw_get, serve_in_thread
from genomorph.cli.dashboard.rundata import run_dirs
from genomorph.cli.dashboard.server import create_app, hosts_for


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Run 0: a run with 5 candidates and files around it; run 1: an empty directory."""
    root = tmp_path / "run"
    make_run(root, 5).close()
    (root / "summary.json").write_text(json.dumps({"strategy": "synthetic"}))
    (root / "progress.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "sub").mkdir()
    (root / "sub" / "inner.json").write_text("{}")
    (tmp_path / "secret.json").write_text('{"secret": true}')
    (root / "escape.json").symlink_to(tmp_path / "secret.json")
    (root / "escape_dir").symlink_to(tmp_path)
    (root / "inside.json").symlink_to(root / "summary.json")
    (root / ".hidden.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    app = create_app(run_dirs([root, tmp_path / "empty"]), allowed_hosts=hosts_for("127.0.0.1"))
    with serve_in_thread(app) as port:
        yield port, tmp_path


def test_files_inside_the_run_are_served(served: tuple[int, Path]) -> None:
    port, _ = served
    for path in ("summary.json", "progress.png", "sub/inner.json", "inside.json", "sub%2Finner.json"):
        status, _, headers = raw_get(port, f"/api/runs/0/files/{path}")
        assert status == 200, path
        assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "../secret.json",
        "sub/../../secret.json",
        "%2e%2e/secret.json",
        "%2E%2E%2Fsecret.json",
        "..%2fsecret.json",
        "..%5csecret.json",
        "%2F{tmp}%2Fsecret.json",
        "/{tmp}/secret.json",
        "{tmp}/secret.json",
        "escape.json",
        "escape_dir/secret.json",
        ".hidden.json",
        "run.db",
        "run.db%00.json",
        "checkpoints",
        "",
    ],
)
def test_no_path_leaves_the_run_directory(served: tuple[int, Path], path: str) -> None:
    port, tmp = served
    status, body, _ = raw_get(port, "/api/runs/0/files/" + path.format(tmp=str(tmp).lstrip("/")))
    assert status == 404, (path, body[:200])
    assert b"secret" not in body


@pytest.mark.parametrize(
    "path",
    [
        "/static/../rundata.py",
        "/static/%2e%2e%2frundata.py",
        "/static/index.html",
        "/api/runs/2/page",
        "/api/runs/-1/page",
        "/../../etc/passwd",
    ],
)
def test_nothing_else_is_served(served: tuple[int, Path], path: str) -> None:
    port, _ = served
    status, body, _ = raw_get(port, path)
    assert status == 404, (path, body[:200])


def test_other_host_headers_are_refused(served: tuple[int, Path]) -> None:
    port, _ = served
    status, _, _ = raw_get(port, "/api/runs", host="attacker.example")
    assert status == 400
    assert raw_get(port, "/api/runs", host=f"localhost:{port}")[0] == 200


def test_only_get_is_answered(served: tuple[int, Path]) -> None:
    import http.client

    port, _ = served
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/api/runs/0/page", body=b"{}")
    assert connection.getresponse().status == 405
    connection.close()


def test_page_candidates_and_an_unreadable_run(served: tuple[int, Path]) -> None:
    port, _ = served
    assert [r["index"] for r in get_json(port, "/api/runs")[1]["runs"]] == [0, 1]
    status, page = get_json(port, "/api/runs/0/page")
    assert status == 200 and len(page["candidates"]) == 5 and page["summary"] == {"strategy": "synthetic"}
    status, later = get_json(port, f"/api/runs/0/page?since={page['cursor']}")
    assert status == 200 and not later["full"]
    assert get_json(port, "/api/runs/0/page?since=abc")[0] == 400
    status, stale = get_json(port, "/api/runs/0/page?since=00:7")  # another cache: everything
    assert status == 200 and stale["full"] and len(stale["candidates"]) == 5
    status, detail = get_json(port, "/api/runs/0/candidates/3")
    assert status == 200 and detail["id"] == 3 and detail["lineage"][-1]["id"] == 3
    assert get_json(port, "/api/runs/0/candidates/99")[0] == 404
    status, broken = get_json(port, "/api/runs/1/page")
    assert status == 200 and "holds no run.db" in broken["error"]
    status, body, _ = raw_get(port, "/api/runs/1/panels")
    assert status == 200 and b"Traceback" not in body


def test_a_run_that_breaks_while_served_shows_a_message(served: tuple[int, Path]) -> None:
    port, tmp = served
    db = tmp / "run" / "run.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"garbage" * 1000)
    status, body, _ = raw_get(port, "/api/runs/0/page")
    assert status == 200 and b"cannot be read" in body and b"Traceback" not in body
    status, body, _ = raw_get(port, "/api/runs/0/candidates/1")
    assert status == 503 and b"Traceback" not in body


def test_graph_svg_from_the_renderer(served: tuple[int, Path]) -> None:
    port, _ = served
    status, body, headers = raw_get(port, "/api/runs/0/candidates/2/graph.svg")
    if shutil.which("dot") is None:
        assert status == 503 and b"Graphviz" in body
        return
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert body.lstrip().startswith(b"<svg") and b"conv" in body


def test_page_links_only_its_own_scripts(served: tuple[int, Path]) -> None:
    port, _ = served
    status, body, headers = raw_get(port, "/")
    assert status == 200
    html = body.decode()
    assert re.findall(r'src="([^"]+)"', html) == ["/static/plotly.min.js", "/static/app.js"]
    assert "script-src 'self'" in headers["content-security-policy"]
    for name in ("plotly.min.js", "app.js", "app.css"):
        assert raw_get(port, f"/static/{name}")[0] == 200


def _start_dashboard(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "genomorph.cli", "dashboard", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if match := re.search(r"http://[^/]+/", line):
            return process, match.group(0)
    process.kill()
    raise AssertionError("the dashboard printed no URL: " + "".join(lines))


def test_the_command_serves_on_loopback_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 2).close()
    process, url = _start_dashboard(str(tmp_path / "run"), "--port", "0")
    try:
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        status, page = get_json(port, "/api/runs/0/page")
        assert status == 200 and len(page["candidates"]) == 2
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0


def test_a_busy_port_is_a_message_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = genomorph("dashboard", str(tmp_path), "--port", str(port), timeout=120)
    assert done.returncode == 2, done.stderr
    assert "already in use" in done.stderr and "--port 0" in done.stderr and "Traceback" not in done.stderr


def test_report_html_is_one_self_contained_file(digits_report: Path) -> None:
    html = digits_report.read_text(encoding="utf-8")
    # nothing to fetch: no script, stylesheet or image from anywhere but the file itself
    assert not re.findall(r"<script[^>]+src=", html)
    assert not re.findall(r'<link[^>]+href="(?!data:)', html)
    assert "Plotly" in html and "genomorph-data" in html
    data = json.loads(
        re.search(r'<script type="application/json" id="genomorph-data">(.*?)</script>', html, re.S).group(1)
    )
    [run] = data["runs"]
    assert len(run["details"]) == len(run["page"]["candidates"]) == 4
    assert set(run["pictures"]) >= {"accuracy_vs_params.png", "progress.png"}
    assert all(v.startswith("data:image/png;base64,") for v in run["pictures"].values())
    if shutil.which("dot"):
        assert run["graphs"] and all(svg.startswith("<svg") for svg in run["graphs"].values())
