"""``genomorph dashboard``: a live page over one or more run directories, and the HTML report.

- `rundata`: read-only, incremental reading of a run directory (SQLite ``mode=ro``);
- `panels` and `alphas`: per-strategy figures, drawn when a run recorded their data;
- `views`: the page template, graphs, the files a request may read;
- `server`: the Starlette app and the uvicorn server;
- `report_html`: the same views as one self-contained HTML file;
- `command`: the click command.
"""
