// genomorph dashboard: one script for the live page (polling the server) and the one-file
// report (data embedded in the page). Every text from a run goes in through textContent.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("genomorph-config").textContent);
  const embedded = document.getElementById("genomorph-data");
  const report = embedded ? JSON.parse(embedded.textContent) : null;
  const MAX_ROWS = 500;
  const COLORS = ["#2f6fdb", "#e4572e", "#17a398", "#8e44ad", "#f3a712", "#5d737e", "#c0392b", "#1e8e3e"];
  const PLOT_CONFIG = { responsive: true, displaylogo: false };
  // titles on the left: the mode bar's buttons sit on the right
  const title = (text) => ({ text, x: 0.01, xanchor: "left", font: { size: 14 } });
  function scoreRange(values) {
    // a few equal scores would get plotly's ±0.5 around them: pad by a share of the spread instead
    const finite = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
    if (!finite.length) return undefined;
    const lo = Math.min(...finite), hi = Math.max(...finite);
    const pad = Math.max(0.005, 0.08 * (hi - lo));
    return [lo - pad, hi + pad];
  }

  const state = {
    runs: [],
    selectedRun: 0,
    selected: null, // candidate id in the selected run
    sort: { key: "id", dir: 1 },
    filter: "",
    polls: 0,
  };

  // ------------------------------------------------------------------ data sources
  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      throw new Error(`${url}: HTTP ${response.status}`);
    }
    if (!response.ok) throw new Error(body && body.error ? body.error : `HTTP ${response.status}`);
    return body;
  }

  const live = {
    live: true,
    runs: async () => (await getJSON("/api/runs")).runs,
    page: (i, since) => getJSON(`/api/runs/${i}/page` + (since === null || since === undefined ? "" : `?since=${encodeURIComponent(since)}`)),
    panels: (i) => getJSON(`/api/runs/${i}/panels`),
    candidate: (i, cid) => getJSON(`/api/runs/${i}/candidates/${cid}`),
    graph: async (i, cid) => {
      const response = await fetch(`/api/runs/${i}/candidates/${cid}/graph.svg`);
      if (response.ok) return { svg: await response.text() };
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).error || message; } catch (err) { /* not JSON */ }
      return { error: message };
    },
    pictureUrl: (i, name) => `/api/runs/${i}/files/${encodeURIComponent(name)}`,
  };

  const offline = report && {
    live: false,
    runs: async () => report.runs.map((r) => r.run),
    page: async (i) => report.runs[i].page,
    panels: async (i) => ({ panels: report.runs[i].panels || [] }),
    candidate: async (i, cid) => {
      const detail = (report.runs[i].details || {})[cid];
      if (!detail) throw new Error(`candidate ${cid}'s details are not in this report`);
      return detail;
    },
    graph: async (i, cid) => {
      const svg = (report.runs[i].graphs || {})[cid];
      return svg ? { svg } : { error: report.runs[i].graph_note || "this report has no drawing of this graph" };
    },
    pictureUrl: (i, name) => (report.runs[i].pictures || {})[name],
  };
  const source = offline || live;

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const num = (v) => (v === null || v === undefined ? "" : Number(v).toLocaleString("en-US"));
  const secs = (v) => (v === null || v === undefined ? "" : Number(v).toFixed(1));
  function score(v, task) {
    if (v === null || v === undefined) return "";
    return task === "regression" ? Number(v).toFixed(4) : (100 * v).toFixed(2) + " %";
  }
  function duration(s) {
    if (s === null || s === undefined) return "?";
    if (s < 90) return `${s.toFixed(1)} s`;
    if (s < 5400) return `${(s / 60).toFixed(1)} min`;
    return `${(s / 3600).toFixed(2)} h`;
  }
  const searched = (c) => c.status === "finished" && !c.final && c.objective !== null && c.objective !== undefined;
  function front(points) {
    const sorted = points.slice().sort((a, b) => a.x - b.x || b.y - a.y || a.id - b.id);
    const out = [];
    for (const p of sorted) if (!out.length || p.y > out[out.length - 1].y) out.push(p);
    return out;
  }
  function bestOf(run) {
    const named = run.page && run.page.status ? run.page.status.result_candidate : null;
    if (named !== null && named !== undefined && run.rows.has(named) && run.rows.get(named).status === "finished") {
      return run.rows.get(named);
    }
    let best = null;
    for (const c of run.rows.values()) {
      if (!searched(c)) continue;
      if (!best || c.objective > best.objective || (c.objective === best.objective && (c.params || 0) < (best.params || 0))) best = c;
    }
    return best;
  }
  const taskOf = (run) => (run.page && run.page.config ? run.page.config.task : "classification");
  const color = (i) => COLORS[i % COLORS.length];
  // WebGL only where SVG would crawl, and where there is WebGL (headless or remote browsers may lack it)
  const HAS_WEBGL = (() => {
    try {
      return Boolean(document.createElement("canvas").getContext("webgl"));
    } catch (err) {
      return false;
    }
  })();
  const scatterType = (n) => (n > 3000 && HAS_WEBGL ? "scattergl" : "scatter");

  function setMessages() {
    const box = document.getElementById("messages");
    box.replaceChildren();
    for (const run of state.runs) {
      if (run.error) box.append(el("div", { class: "message error", "data-run": run.info.index, text: `${run.info.name}: ${run.error}` }));
    }
  }

  // ------------------------------------------------------------------ run cards
  function renderRuns() {
    const box = document.getElementById("runs");
    box.replaceChildren();
    state.runs.forEach((run, i) => {
      const card = el("div", { class: "run-card", id: `run-${i}` });
      const page = run.page;
      let status = page && page.status ? page.status.status : "unreadable";
      let badge = status;
      if (status === "running" && page.status.last_write_s_ago > 300) badge = "stale";
      card.append(
        el("h2", {}, el("span", { style: `color:${color(i)}`, text: "●" }), run.info.name,
          el("span", { class: `badge ${badge}`, id: `status-${i}`, text: badge === "stale" ? `running? no write for ${duration(page.status.last_write_s_ago)}` : status })),
        el("div", { class: "path", text: run.info.path }),
      );
      if (page && page.status) {
        const task = taskOf(run);
        const best = bestOf(run);
        const counts = page.status.counts || {};
        const summary = page.summary || {};
        const rows = [
          ["strategy", `${page.config.strategy} on ${page.config.dataset}` + (page.config.seed !== null && page.config.seed !== undefined ? ` (seed ${page.config.seed})` : "")],
          ["executor", `${page.config.executor}, ${page.config.workers} worker(s)`],
          ["candidates", ["finished", "failed", "running", "queued"].map((k) => `${counts[k] || 0} ${k}`).join(", ")],
          ["best", best ? `#${best.id}: ${score(best.final ? (best.test_accuracy ?? best.objective) : best.objective, task)}${best.final ? " (final training, test)" : " (validation)"}, ${num(best.params)} params, ${num(best.macs)} MACs` : "none yet"],
          ["test score", summary.test_accuracy !== undefined && summary.test_accuracy !== null ? score(summary.test_accuracy, task) : (summary.test_r2 !== undefined && summary.test_r2 !== null ? score(summary.test_r2, "regression") : (best && best.test_accuracy !== null ? score(best.test_accuracy, task) : "not measured yet"))],
          ["time", `${duration(page.status.elapsed_s)} run, ${duration(page.status.train_s)} training, ${duration(page.status.eval_s)} evaluation`],
        ];
        const shown = new Set(["strategy", "dataset", "task", "status", "seed", "best_candidate", "best_genome", "best_objective", "best_val_accuracy", "test_accuracy", "test_r2", "params", "macs", "candidates_total", "candidates_finished", "candidates_failed", "wall_s", "train_s", "eval_s", "setup_s", "executor", "workers", "test_measured_by"]);
        for (const [key, value] of Object.entries(summary)) {
          // genomes have their own place (the candidate's detail); long texts are cut
          if (shown.has(key) || key.endsWith("genome") || value === null || typeof value === "object") continue;
          const text = typeof value === "number" ? (Number.isInteger(value) ? num(value) : value.toPrecision(4)) : String(value);
          rows.push([key, text.length > 240 ? text.slice(0, 239) + "…" : text]);
        }
        const table = el("table", { class: "kv" });
        for (const [k, v] of rows) table.append(el("tr", {}, el("th", { text: k }), el("td", { text: v })));
        card.append(table);
      }
      box.append(card);
    });
  }

  // ------------------------------------------------------------------ main plots
  function renderMainPlots() {
    const accData = [];
    const progressData = [];
    const scores = [];
    let task = "classification";
    state.runs.forEach((run, i) => {
      task = taskOf(run);
      const label = state.runs.length > 1 ? `${run.info.name}: ` : "";
      const done = [...run.rows.values()].filter((c) => searched(c) && c.params);
      const points = done.map((c) => ({ x: c.params, y: c.objective, id: c.id }));
      scores.push(...points.map((p) => p.y));
      accData.push({
        type: scatterType(points.length), mode: "markers", name: `${label}candidates`, x: points.map((p) => p.x), y: points.map((p) => p.y),
        text: points.map((p) => `#${p.id}`), customdata: points.map((p) => [i, p.id]), marker: { color: color(i), size: 7, opacity: 0.6 },
      });
      const f = front(points);
      if (f.length) {
        const maxX = Math.max(...points.map((p) => p.x));
        accData.push({
          type: "scatter", mode: "lines+markers", line: { shape: "hv", color: color(i) }, name: `${label}Pareto front`,
          x: f.map((p) => p.x).concat([maxX]), y: f.map((p) => p.y).concat([f[f.length - 1].y]),
          customdata: f.map((p) => [i, p.id]).concat([[i, f[f.length - 1].id]]), marker: { symbol: "diamond", size: 8 },
        });
      }
      const best = bestOf(run);
      if (best && best.params) {
        let y = best.objective;
        if (best.final) { // its validation score is that of the candidate it was retrained from
          const parent = run.rows.get(best.parent);
          y = parent && searched(parent) ? parent.objective : null;
        }
        if (y !== null) {
          accData.push({ type: "scatter", mode: "markers", name: `${label}best #${best.id}`, x: [best.params], y: [y], customdata: [[i, best.id]],
            marker: { symbol: "star", size: 18, color: "#d4a017", line: { color: "#7a5c00", width: 1 } } });
        }
      }
      const timed = done.filter((c) => c.finished_s !== null).sort((a, b) => a.finished_s - b.finished_s);
      let running = -Infinity;
      const bestSoFar = timed.map((c) => (running = Math.max(running, c.objective)));
      progressData.push({ type: scatterType(timed.length), mode: "markers", name: `${label}candidate`, x: timed.map((c) => c.finished_s), y: timed.map((c) => c.objective),
        customdata: timed.map((c) => [i, c.id]), text: timed.map((c) => `#${c.id}`), marker: { color: color(i), size: 6, opacity: 0.45 } });
      progressData.push({ type: "scatter", mode: "lines", line: { shape: "hv", color: color(i), width: 2.5 }, name: `${label}best so far`,
        x: timed.map((c) => c.finished_s), y: bestSoFar });
    });
    const yTitle = task === "regression" ? "validation R²" : "validation accuracy";
    const range = scoreRange(scores);
    Plotly.react("plot-acc-params", accData, {
      title: title(`${yTitle} vs parameters`), margin: { t: 40, r: 10 }, legend: { orientation: "h", y: -0.22 },
      xaxis: { type: "log", title: { text: "parameters" } }, yaxis: { title: { text: yTitle }, range },
    }, PLOT_CONFIG);
    Plotly.react("plot-progress", progressData, {
      title: title("best so far over run time"), margin: { t: 40, r: 10 }, legend: { orientation: "h", y: -0.22 },
      xaxis: { title: { text: "run time (s)" } }, yaxis: { title: { text: yTitle }, range },
    }, PLOT_CONFIG);
  }

  function onPlotClick(event) {
    const point = event.points && event.points[0];
    if (point && Array.isArray(point.customdata)) selectCandidate(point.customdata[0], point.customdata[1]);
  }

  // ------------------------------------------------------------------ candidate table
  const COLUMNS = [
    { key: "id", label: "id", cls: "num" },
    { key: "parent", label: "parent", cls: "num" },
    { key: "status", label: "status" },
    { key: "genome", label: "genome", cls: "genome" },
    { key: "rewrites", label: "rewrites", get: (c) => c.rewrites.join(", ") },
    { key: "params", label: "params", cls: "num", fmt: num },
    { key: "macs", label: "MACs", cls: "num", fmt: num },
    { key: "objective", label: "val score", cls: "num", score: true, get: (c) => (c.final ? null : c.objective) },
    { key: "test_accuracy", label: "test acc", cls: "num", score: true, get: (c) => c.test_accuracy ?? c.test_r2 },
    { key: "train_accuracy", label: "train acc", cls: "num", score: true },
    { key: "epochs", label: "epochs", cls: "num" },
    { key: "train_s", label: "train s", cls: "num", fmt: secs },
    { key: "eval_s", label: "eval s", cls: "num", fmt: secs },
    { key: "setup_s", label: "setup s", cls: "num", fmt: secs },
    { key: "finished_s", label: "done at s", cls: "num", fmt: secs },
    { key: "meta", label: "meta", get: (c) => Object.entries(c.meta || {}).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ") },
    { key: "reason", label: "failure reason", cls: "reason" },
  ];
  const valueOf = (col, c) => (col.get ? col.get(c) : c[col.key]);

  function renderHead() {
    const row = el("tr");
    for (const col of COLUMNS) {
      const sorted = state.sort.key === col.key ? (state.sort.dir > 0 ? "sorted-asc" : "sorted-desc") : null;
      row.append(el("th", { "data-key": col.key, class: sorted, text: col.label, onclick: () => {
        state.sort = { key: col.key, dir: state.sort.key === col.key ? -state.sort.dir : (col.cls === "num" ? -1 : 1) };
        renderHead();
        renderTable();
      } }));
    }
    document.querySelector("#candidates thead").replaceChildren(row);
  }

  function renderTable() {
    const run = state.runs[state.selectedRun];
    const body = document.querySelector("#candidates tbody");
    if (!run) { body.replaceChildren(); return; }
    const task = taskOf(run);
    const needle = state.filter.toLowerCase();
    let rows = [...run.rows.values()];
    if (needle) {
      rows = rows.filter((c) => [c.genome, c.status, c.reason, c.rewrites.join(" "), `#${c.id}`, JSON.stringify(c.meta)].some((t) => t && String(t).toLowerCase().includes(needle)));
    }
    const col = COLUMNS.find((c) => c.key === state.sort.key) || COLUMNS[0];
    const dir = state.sort.dir;
    rows.sort((a, b) => {
      const x = valueOf(col, a), y = valueOf(col, b);
      const xn = x === null || x === undefined || x === "", yn = y === null || y === undefined || y === "";
      if (xn || yn) return xn === yn ? a.id - b.id : (xn ? 1 : -1); // empty cells last in both directions
      if (typeof x === "number" && typeof y === "number") return (x - y) * dir || a.id - b.id;
      return String(x).localeCompare(String(y)) * dir || a.id - b.id;
    });
    const best = bestOf(run);
    const shown = rows.slice(0, MAX_ROWS);
    const fragment = document.createDocumentFragment();
    for (const c of shown) {
      const tr = el("tr", { "data-id": c.id, class: [c.id === state.selected ? "selected" : "", best && c.id === best.id ? "best" : ""].join(" ").trim() || null,
        onclick: () => selectCandidate(state.selectedRun, c.id) });
      for (const column of COLUMNS) {
        const value = valueOf(column, c);
        const text = column.score ? score(value, task) : column.fmt ? column.fmt(value) : (value === null || value === undefined ? "" : String(value));
        tr.append(el("td", { class: column.cls || null, title: column.key === "genome" || column.key === "reason" ? (value || "") : null, text }));
      }
      fragment.append(tr);
    }
    body.replaceChildren(fragment);
    document.getElementById("table-count").textContent =
      `${rows.length} of ${run.rows.size} candidates` + (rows.length > MAX_ROWS ? ` (showing the first ${MAX_ROWS}: sort or filter for others)` : "");
  }

  function renderRunSelect() {
    const select = document.getElementById("run-select");
    document.getElementById("run-select-label").hidden = state.runs.length < 2;
    if (select.options.length !== state.runs.length) {
      select.replaceChildren(...state.runs.map((r, i) => el("option", { value: i, text: r.info.name })));
    }
    select.value = String(state.selectedRun);
  }

  // ------------------------------------------------------------------ candidate detail
  async function selectCandidate(runIndex, cid) {
    state.selectedRun = runIndex;
    state.selected = cid;
    renderRunSelect();
    renderTable();
    const section = document.getElementById("detail");
    section.hidden = false;
    const run = state.runs[runIndex];
    document.getElementById("detail-title").textContent = `Candidate #${cid} of ${run.info.name}`;
    let detail;
    try {
      detail = await source.candidate(run.info.index, cid);
    } catch (err) {
      document.getElementById("detail-genome").textContent = `cannot load candidate ${cid}: ${err.message}`;
      return;
    }
    if (state.selected !== cid) return; // another click came first
    renderDetail(run, detail);
    const graph = await source.graph(run.info.index, cid);
    if (state.selected !== cid) return;
    const box = document.getElementById("detail-graph");
    if (graph.svg) {
      box.replaceChildren(el("img", { id: "detail-graph-img", alt: `graph of candidate ${cid}`, src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(graph.svg) }));
    } else {
      box.replaceChildren(el("div", { class: "message", id: "detail-graph-message", text: `no drawing: ${graph.error}` }));
    }
  }

  // the open candidate may have changed (finished, new children): redraw its text, keep its graph
  async function refreshDetail() {
    const run = state.runs[state.selectedRun];
    const cid = state.selected;
    if (!run || cid === null || document.getElementById("detail").hidden) return;
    try {
      const detail = await source.candidate(run.info.index, cid);
      if (state.selected === cid) renderDetail(run, detail);
    } catch (err) {
      /* the next poll tries again */
    }
  }

  function renderDetail(run, d) {
    const task = taskOf(run);
    document.getElementById("detail-title").textContent = `Candidate #${d.id} of ${run.info.name}: ${d.status}`;
    document.getElementById("detail-genome").textContent = d.genome;
    const m = d.metrics || {};
    const rows = [
      ["status", d.status + (d.reason ? `: ${d.reason}` : "")],
      ["parent", d.parent === null ? "none (a start network)" : `#${d.parent}`],
      ["children", d.children.length ? d.children.map((c) => `#${c}`).join(", ") : "none"],
      ["validation", m.val_accuracy !== undefined && m.val_accuracy !== null ? score(m.val_accuracy, "classification") : (m.val_r2 !== null && m.val_r2 !== undefined ? score(m.val_r2, "regression") : "")],
      ["test", m.test_accuracy !== undefined && m.test_accuracy !== null ? score(m.test_accuracy, "classification") : (m.test_r2 !== null && m.test_r2 !== undefined ? score(m.test_r2, "regression") : "")],
      ["train", m.train_accuracy !== undefined && m.train_accuracy !== null ? score(m.train_accuracy, task) : ""],
      ["params / MACs", m.params !== undefined ? `${num(m.params)} / ${num(m.macs)}` : ""],
      ["budget", d.budget ? `${d.budget.epochs} epochs, ${d.budget.schedule || "default"} schedule, on ${d.budget.train_on}` : ""],
      ["timings", `setup ${secs(d.timings.setup_s)} s, train ${secs(d.timings.train_s)} s, eval ${secs(d.timings.eval_s)} s, ${d.attempts} attempt(s)`],
      ["meta", JSON.stringify(d.meta)],
      ["checkpoint", d.checkpoint || ""],
    ];
    for (const [k, v] of Object.entries(m.extra || {})) rows.push([k, typeof v === "object" ? JSON.stringify(v) : String(v)]);
    const table = document.getElementById("detail-metrics");
    table.replaceChildren(...rows.filter(([, v]) => v !== "").map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: v }))));
    const lineage = document.getElementById("detail-lineage");
    lineage.replaceChildren(...d.lineage.map((step) => el("li", { "data-id": step.id },
      el("a", { onclick: () => selectCandidate(state.selectedRun, step.id), text: `#${step.id}` }),
      ` ${step.status}` + (step.objective !== null ? `, ${score(step.objective, task)}` : "") + (step.params ? `, ${num(step.params)} params` : ""),
      step.rewrites.length ? el("ul", {}, ...step.rewrites.map((r) => el("li", { text: r }))) : null)));
    const history = m.history || [];
    const keys = ["train_loss", "val_loss", "val_accuracy", "train_accuracy"].filter((k) => history.some((h) => h[k] !== undefined));
    Plotly.react("plot-history", keys.map((k) => ({ type: "scatter", mode: "lines+markers", name: k, x: history.map((h) => h.epoch), y: history.map((h) => h[k]),
      yaxis: k.includes("loss") ? "y" : "y2" })), {
      title: title(`training of #${d.id} per epoch`), margin: { t: 40, r: 50 }, legend: { orientation: "h", y: -0.3 },
      xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "loss" } }, yaxis2: { title: { text: "accuracy" }, overlaying: "y", side: "right" },
    }, PLOT_CONFIG);
  }

  // ------------------------------------------------------------------ strategy panels
  function renderPanels() {
    const box = document.getElementById("panels");
    box.replaceChildren();
    const run = state.runs[state.selectedRun];
    if (!run || !run.panels) return;
    for (const panel of run.panels) {
      const div = el("div", { class: "panel", id: `panel-${panel.id}` }, el("h2", { text: panel.title }));
      if (panel.note) div.append(el("p", { class: "note", text: panel.note }));
      if (panel.figure) {
        const plot = el("div", { class: "plot" });
        div.append(plot);
        box.append(div);
        const layout = Object.assign({ margin: { t: 40 } }, panel.figure.layout);
        if (layout.title && layout.title.text) layout.title = title(layout.title.text);
        const data = HAS_WEBGL ? panel.figure.data : panel.figure.data.map((t) => (t.type === "scattergl" ? Object.assign({}, t, { type: "scatter" }) : t));
        Plotly.react(plot, data, layout, PLOT_CONFIG);
        plot.on("plotly_click", (e) => {
          const p = e.points && e.points[0];
          if (p && typeof p.customdata === "number") selectCandidate(state.selectedRun, p.customdata);
        });
        continue;
      }
      if (panel.table) {
        const table = el("table", {}, el("tr", {}, ...panel.table.columns.map((c) => el("th", { text: c }))));
        for (const row of panel.table.rows) {
          table.append(el("tr", { onclick: () => typeof row.candidate === "number" && selectCandidate(state.selectedRun, row.candidate) },
            ...panel.table.columns.map((c) => el("td", { text: row[c] === undefined || row[c] === null ? "" : (typeof row[c] === "number" && !Number.isInteger(row[c]) ? row[c].toPrecision(4) : String(row[c])) }))));
        }
        div.append(table);
      }
      if (panel.pictures) {
        div.append(el("div", { class: "pictures" }, ...panel.pictures.map((name) =>
          el("figure", {}, el("img", { src: source.pictureUrl(run.info.index, name), alt: name, loading: "lazy" }), el("figcaption", { text: name })))));
      }
      box.append(div);
    }
  }

  // ------------------------------------------------------------------ polling
  async function refreshRun(run) {
    let page;
    try {
      page = await source.page(run.info.index, run.cursor);
    } catch (err) {
      run.error = `cannot reach the dashboard server: ${err.message}`;
      return false;
    }
    if (page.error) {
      run.error = page.error;
      run.page = null;
      run.rows = new Map();
      run.cursor = null;
      run.panels = null;
      return true;
    }
    run.error = null;
    if (page.full) run.rows = new Map();
    for (const c of page.candidates) run.rows.set(c.id, c);
    const changed = page.full || page.cursor !== run.cursor || (run.page && run.page.status.status !== page.status.status);
    run.cursor = page.cursor;
    run.page = page;
    if (changed || !run.panels) {
      try {
        run.panels = (await source.panels(run.info.index)).panels;
      } catch (err) {
        run.panels = [{ id: "error", title: "Strategy views", note: `cannot load: ${err.message}` }];
      }
    }
    return changed;
  }

  async function refresh() {
    const results = await Promise.all(state.runs.map(refreshRun));
    state.polls += 1;
    document.body.dataset.polls = String(state.polls);
    setMessages();
    renderRuns();
    if (results.some(Boolean) || state.polls === 1) {
      renderMainPlots();
      renderTable();
      renderPanels();
      if (state.polls > 1 && results[state.selectedRun]) refreshDetail();
    }
    document.getElementById("updated").textContent = source.live ? `updated ${new Date().toLocaleTimeString()}` : "";
  }

  async function loop() {
    try {
      await refresh();
    } finally {
      if (source.live) setTimeout(loop, config.poll_ms || 2000);
    }
  }

  async function start() {
    document.getElementById("mode").textContent = source.live ? `live, every ${((config.poll_ms || 2000) / 1000).toFixed(1)} s` : `report written ${report.written || ""}`;
    const infos = await source.runs();
    state.runs = infos.map((info) => ({ info, rows: new Map(), cursor: null, page: null, panels: null, error: null }));
    document.getElementById("run-select").addEventListener("change", (e) => {
      state.selectedRun = Number(e.target.value);
      state.selected = null;
      document.getElementById("detail").hidden = true;
      renderTable();
      renderPanels();
    });
    document.getElementById("filter").addEventListener("input", (e) => {
      state.filter = e.target.value;
      renderTable();
    });
    renderRunSelect();
    renderHead();
    await loop();
    document.getElementById("plot-acc-params").on("plotly_click", onPlotClick);
    document.getElementById("plot-progress").on("plotly_click", onPlotClick);
    document.body.dataset.ready = "1";
  }

  start().catch((err) => {
    document.getElementById("messages").append(el("div", { class: "message error", text: `the page could not start: ${err.message}` }));
  });
})();
