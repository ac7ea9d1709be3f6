// Pravis dashboards: fetch a page's panels (data + SQL) from the backend and draw them with the vendored
// Chart.js (the top paths also as an SVG flow chart, laid out by flow.js); the Live page polls
// /api/live/{project} (relayed from the stream tier) and updates in place; the Executive and Live pages show
// the system health summary (/api/health/{project}), refreshed in place.
"use strict";

const COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
// Series whose name carries a meaning keep their colour on every chart.
const NAMED = { positive: "#16a34a", neutral: "#94a3b8", negative: "#dc2626", critical: "#dc2626", warning: "#f59e0b", info: "#2563eb" };
const color = (name, i) => NAMED[name] || COLORS[i % COLORS.length];
const state = { charts: {}, ready: false, live: { updates: 0, errors: 0, last: null }, health: { updates: 0, errors: 0, last: null } };
const HEALTH_PAGES = ["executive", "live"];
window.pravis = state;
const charts = {};
const page = document.body.dataset.page;
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function query() {
  const params = new URLSearchParams(location.search);
  const q = { project: params.get("project") || "", from: params.get("from") || "", to: params.get("to") || "" };
  return { ...q, funnel: params.get("funnel") || "", breakdown: params.get("breakdown") || "", opportunity: params.get("opportunity") || "", survey: params.get("survey") || "" };
}

// An alert links the Live page filtered to its series: ?project=P&metric=M plus the series' labels.
function alertSeries() {
  const params = new URLSearchParams(location.search);
  const metric = params.get("metric");
  if (!metric) return null;
  const labels = Object.fromEntries([...params].filter(([key]) => !["project", "from", "to", "metric"].includes(key)));
  return { metric, labels };
}

function isSeries(alert, series) {
  return alert.metric === series.metric && Object.entries(series.labels).every(([key, value]) => alert.labels[key] === value);
}

function queryString(q) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(q)) if (value) params.set(key, value);
  return params.toString();
}

function format(value, percent) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value)) return value.slice(0, 16).replace("T", " ");
  if (typeof value !== "number") return String(value);
  if (percent) return (value * 100).toFixed(1) + " %";
  return Number.isInteger(value) ? value.toLocaleString("en") : value.toLocaleString("en", { maximumFractionDigits: 2 });
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

// IEC units, as `free -h` and Grafana's "bytes" show memory: 2147483648 is "2 GiB", not a ten-digit label.
function formatBytes(value) {
  if (typeof value !== "number") return format(value, false);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toLocaleString("en", { maximumFractionDigits: value >= 100 ? 0 : 1 })} ${BYTE_UNITS[unit]}`;
}

// Axis steps of 1, 2 or 5 times a power of ten in the unit the largest value reads in (200 MiB, not 95.4).
function byteStep(series) {
  const largest = Math.max(0, ...series.flatMap((s) => s.data.filter((v) => typeof v === "number")));
  if (!largest) return undefined;
  const unit = 1024 ** Math.min(Math.floor(Math.log(largest) / Math.log(1024)), BYTE_UNITS.length - 1);
  const rough = largest / unit / 6;
  const decade = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 5, 10].map((m) => m * decade).find((step) => step >= rough) * unit;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok && body.ok !== false) throw new Error(`${url}: ${response.status}`);
  return body;
}

async function pickers() {
  const meta = await getJson("/api/meta?" + queryString(query()));
  const select = $("project");
  select.replaceChildren(...meta.projects.map((p) => el("option", { value: p, text: p })));
  select.value = meta.project;
  $("from").value = meta.from;
  $("to").value = meta.to;
  if (page === "product" && meta.funnels.length) {
    // The funnel panels follow the funnel and breakdown chosen here (none: the project's first funnel).
    for (const label of document.querySelectorAll("label.funnel")) label.hidden = false;
    $("funnel").replaceChildren(...meta.funnels.map((f) => el("option", { value: f, text: f })));
    $("funnel").value = query().funnel || meta.funnels[0];
    // Besides these, any properties.<path> or variant:<experiment> can be typed in.
    $("breakdowns").replaceChildren(...meta.breakdowns.map((b) => el("option", { value: b })));
    $("breakdown").value = query().breakdown;
  }
  if (page === "product" && meta.surveys.length) {
    // The survey panels show the survey chosen here (none: the project's first survey).
    $("survey").closest("label").hidden = false;
    $("survey").replaceChildren(...meta.surveys.map((s) => el("option", { value: s, text: s })));
    $("survey").value = query().survey || meta.surveys[0];
  }
  for (const link of document.querySelectorAll("nav a")) {
    const q = link.dataset.nav === "live" ? { project: meta.project } : { project: meta.project, from: meta.from, to: meta.to };
    link.href = "/" + link.dataset.nav + "?" + queryString(q);
  }
  return meta;
}

// chart.secondary: counts drawn as pale bars behind the lines, on a right-hand axis of their own.
function lineOrBar(canvas, panel) {
  const percent = panel.chart.percent;
  const stacked = panel.chart.stacked;
  const secondary = new Set(panel.chart.secondary || []);
  const scaled = (name) => percent && !secondary.has(name);
  const shown = (value, name) => (panel.chart.bytes && !secondary.has(name) ? formatBytes(value) : format(value, scaled(name)));
  const y2 = { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0, callback: (v) => format(v, false) } };
  return new Chart(canvas, {
    type: panel.chart.kind,
    data: {
      labels: panel.labels,
      datasets: panel.series.map((s, i) => ({
        label: s.name,
        data: s.data,
        borderColor: color(s.name, i),
        backgroundColor: color(s.name, i) + (panel.chart.kind === "bar" ? "cc" : secondary.has(s.name) ? "40" : "33"),
        pointRadius: panel.labels.length > 60 ? 0 : 2.5,
        borderWidth: secondary.has(s.name) ? 0 : 2,
        cubicInterpolationMode: "monotone",
        spanGaps: false,
        ...(secondary.has(s.name) ? { type: "bar", yAxisID: "y2", order: 2 } : { order: 1 }),
      })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${shown(c.parsed.y, c.dataset.label)}` } },
      },
      scales: {
        x: {
          stacked,
          ticks: {
            maxRotation: 0,
            autoSkip: true,
            maxTicksLimit: 10,
            // ISO hours as "2024-03-04 05:00", as in the tooltips; other labels as they are.
            callback: function (v) {
              const label = this.getLabelForValue(v);
              return typeof label === "string" ? format(label, false) : label;
            },
          },
        },
        y: {
          stacked,
          beginAtZero: true,
          ticks: {
            precision: percent ? 2 : 0,
            ...(panel.chart.bytes ? { stepSize: byteStep(panel.series.filter((s) => !secondary.has(s.name))) } : {}),
            callback: (v) => (percent ? Math.round(v * 100) + " %" : panel.chart.bytes ? formatBytes(v) : format(v, false)),
          },
        },
        ...(secondary.size ? { y2 } : {}),
      },
    },
  });
}

function heatmap(canvas, panel) {
  const columns = panel.series.map((s) => s.name.replace("_rate", "").toUpperCase());
  const cells = [];
  panel.series.forEach((s, i) =>
    s.data.forEach((v, row) => {
      if (v !== null) cells.push({ x: columns[i], y: panel.labels[row], v });
    }),
  );
  return new Chart(canvas, {
    type: "matrix",
    data: {
      datasets: [
        {
          label: "retention",
          data: cells,
          backgroundColor: (c) => `rgba(37, 99, 235, ${0.08 + 0.92 * Math.min(1, (c.raw?.v ?? 0) / 0.6)})`,
          borderColor: "#fff",
          borderWidth: 1,
          width: ({ chart }) => (chart.chartArea || {}).width / columns.length - 2,
          height: ({ chart }) => (chart.chartArea || {}).height / Math.max(1, panel.labels.length) - 2,
        },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { title: () => "", label: (c) => `${c.raw.y} ${c.raw.x}: ${format(c.raw.v, true)}` } },
      },
      scales: {
        x: { type: "category", labels: columns, offset: true, grid: { display: false }, position: "top" },
        y: { type: "category", labels: panel.labels, offset: true, reverse: false, grid: { display: false } },
      },
    },
    plugins: [
      {
        id: "cellLabels",
        afterDatasetsDraw(chart) {
          const ctx = chart.ctx;
          ctx.save();
          ctx.font = "12px system-ui, sans-serif";
          ctx.textAlign = "center";
          ctx.textBaseline = "middle";
          chart.getDatasetMeta(0).data.forEach((element, i) => {
            const cell = cells[i];
            const { x, y, width, height } = element.getProps(["x", "y", "width", "height"]);
            ctx.fillStyle = cell.v > 0.3 ? "#fff" : "#1e293b";
            ctx.fillText(format(cell.v, true), x + width / 2, y + height / 2);
          });
          ctx.restore();
        },
      },
    ],
  });
}

function sparkline(values) {
  // An array cell (a daily series) is drawn as a small line, scaled to its own maximum.
  const width = 120, height = 24, top = Math.max(...values, 1);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  svg.append(line);
  return svg;
}

function cell(value, percent, href) {
  if (Array.isArray(value)) return el("td", {}, sparkline(value));
  if (href) return el("td", {}, el("a", { href, text: format(value, false) }));
  return el("td", { text: format(value, percent) });
}

// A table's link columns (chart.links: [text column, URL column]) make the text a link and are not shown.
function table(panel) {
  const links = Object.fromEntries(panel.chart.links || []);
  const hidden = new Set(Object.values(links));
  const percent = new Set(panel.chart.percent_columns || []);
  const data = Object.fromEntries(panel.series.map((s) => [s.name, s.data]));
  const shown = panel.series.filter((s) => !hidden.has(s.name));
  const head = el("tr", {}, el("th", { text: panel.chart.x }), ...shown.map((s) => el("th", { text: s.name })));
  const rows = panel.labels.map((label, i) =>
    el("tr", {}, el("td", { text: format(label, false) }), ...shown.map((s) => cell(s.data[i], percent.has(s.name), links[s.name] && data[links[s.name]][i]))),
  );
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: shown.length + 1, text: "No rows in this range." })));
  return el("table", { class: "alerts" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

const SVG = "http://www.w3.org/2000/svg";
const FLOW = { width: 960, height: 280, nodeWidth: 12, gap: 8, top: 24, side: 190 };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

// The paths table's rows as a Sankey (flow.js lays it out): a <title> on every node and link gives its
// numbers, and the table under it stays the text alternative. The viewBox fixes the aspect ratio, so the
// card has its final height as soon as it is drawn.
function flowChart(panel) {
  const units = panel.series[0].data;
  const rows = panel.labels.map((path, i) => ({ steps: path.split(panel.chart.path_separator), units: units[i] }));
  const size = { ...FLOW, width: FLOW.width - 2 * FLOW.side, height: FLOW.height - FLOW.top };
  const { nodes, links } = flowLayout(rows, size);
  const hues = new Map();
  const hue = (label) => {
    if (!hues.has(label)) hues.set(label, COLORS[hues.size % COLORS.length]);
    return hues.get(label);
  };
  const at = (v) => v.toFixed(2);
  const columns = Math.max(...nodes.map((n) => n.column)) + 1;
  const chart = svg("svg", {
    class: "flow",
    viewBox: `0 0 ${FLOW.width} ${FLOW.height}`,
    role: "img",
    "aria-label": `${panel.title}: ${links.length} links between ${columns} steps; the table below lists the paths.`,
  });
  const plot = svg("g", { transform: `translate(${FLOW.side} ${FLOW.top})` });
  for (let column = 0; column < columns; column += 1) {
    const x = (column * (size.width - FLOW.nodeWidth)) / Math.max(1, columns - 1) + FLOW.nodeWidth / 2;
    plot.append(svg("text", { class: "step", x: at(x), y: -10, "text-anchor": "middle" }, `step ${column + 1}`));
  }
  for (const link of links) {
    const x0 = link.source.x + FLOW.nodeWidth, x1 = link.target.x, middle = (x0 + x1) / 2;
    const title = `step ${link.source.column + 1} ${link.source.label} → step ${link.target.column + 1} ${link.target.label}: ${format(link.units, false)} persons`;
    plot.append(
      svg(
        "path",
        {
          d: `M${at(x0)},${at(link.sy)} C${at(middle)},${at(link.sy)} ${at(middle)},${at(link.ty)} ${at(x1)},${at(link.ty)}`,
          stroke: hue(link.source.label),
          "stroke-width": at(link.width),
          "data-source": `${link.source.column}:${link.source.label}`,
          "data-target": `${link.target.column}:${link.target.label}`,
          "data-units": link.units,
        },
        svg("title", {}, title),
      ),
    );
  }
  for (const node of nodes) {
    const last = node.column === columns - 1;
    plot.append(
      svg(
        "g",
        { class: "node" },
        svg("title", {}, `step ${node.column + 1} ${node.label}: ${format(node.value, false)} persons`),
        svg("rect", { x: at(node.x), y: at(node.y), width: FLOW.nodeWidth, height: at(Math.max(1, node.height)), fill: hue(node.label) }),
        svg(
          "text",
          {
            x: at(last ? node.x + FLOW.nodeWidth + 6 : node.x - 6),
            y: at(node.y + node.height / 2),
            "text-anchor": last ? "start" : "end",
            "dominant-baseline": "middle",
          },
          `${node.label} (${format(node.value, false)})`,
        ),
      ),
    );
  }
  chart.append(plot);
  return chart;
}

function panelCard(panel, q) {
  const links = el(
    "span",
    { class: "links" },
    el("a", { href: `/api/panels/${panel.id}.sql?${queryString(q)}`, download: `${panel.id}.sql`, text: "SQL ⤓" }),
    el("a", { href: `/api/panels/${panel.id}.csv?${queryString(q)}`, download: `${panel.id}.csv`, text: "CSV ⤓" }),
  );
  const card = el(
    "article",
    { class: `panel ${panel.chart.kind}`, id: `panel-${panel.id}`, "data-panel": panel.id },
    el("h3", { text: panel.title }, links),
    el("p", { class: "description", text: panel.description }),
  );
  let chart = null;
  if (panel.error) {
    card.append(el("p", { class: "error", text: "Query failed: " + panel.error }));
  } else if (panel.chart.kind === "table") {
    if (panel.chart.path_separator && panel.labels.length) card.append(el("div", { class: "flow-wrap" }, flowChart(panel)));
    card.append(el("div", { class: "table-wrap" }, table(panel)));
  } else if (!panel.labels.length) {
    card.append(el("p", { class: "empty", text: "No data in this range." }));
  } else {
    const canvas = el("canvas", { "aria-label": panel.title, role: "img" });
    card.append(el("div", { class: "chart" }, canvas));
    chart = () => (panel.chart.kind === "heatmap" ? heatmap(canvas, panel) : lineOrBar(canvas, panel));
  }
  card.append(el("details", {}, el("summary", { text: "Show SQL" }), el("pre", { class: "sql", text: panel.sql })));
  return { card, chart };
}

function countPoints(chart) {
  return chart.data.datasets.reduce((n, d) => n + d.data.filter((v) => v !== null && v !== undefined).length, 0);
}

async function renderPanels() {
  const q = query();
  $("status").textContent = "loading…";
  const body = await getJson(`/api/pages/${page}?` + queryString(q));
  for (const chart of Object.values(charts)) chart.destroy();
  const view = { ...q, project: body.project, from: body.from, to: body.to };
  const container = $("panels");
  container.replaceChildren();
  state.charts = {};
  for (const panel of body.panels) {
    const { card, chart } = panelCard(panel, view);
    container.append(card);
    state.charts[panel.id] = { kind: panel.chart.kind, rows: panel.rows, error: panel.error || null, points: 0 };
    if (chart) {
      charts[panel.id] = chart();
      state.charts[panel.id].points = countPoints(charts[panel.id]);
      state.charts[panel.id].series = charts[panel.id].data.datasets.length;
    } else if (panel.chart.kind === "table") {
      state.charts[panel.id].points = panel.rows;
    }
  }
  $("status").textContent = `${body.project} · ${body.from} → ${body.to}`;
  // A link to a panel (an opportunity's evidence) scrolls to it once the panels exist.
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

function tile(id, label) {
  return el("div", { class: "kpi", id: `kpi-${id}` }, el("span", { class: "value", text: "–" }), el("span", { class: "label", text: label }));
}

function setTile(id, text) {
  document.querySelector(`#kpi-${id} .value`).textContent = text;
}

async function pollLive(project, pollMs) {
  try {
    const body = await getJson(`/api/live/${encodeURIComponent(project)}`);
    if (!body.ok) throw new Error(body.error);
    setTile("active_users", format(body.active_users, false));
    setTile("events_per_minute", format(body.events_per_minute, false));
    setTile("error_rate", format(body.error_rate, true));
    setTile("open_alerts", format(body.open_alerts, false));
    const chart = charts.live;
    chart.data.labels = body.minutes;
    body.series.forEach((s, i) => (chart.data.datasets[i].data = s.data));
    chart.update("none");
    const series = alertSeries();
    const alerts = $("live-alerts");
    alerts.replaceChildren(
      ...(body.alerts.length
        ? body.alerts.map((a) => el("li", { class: series && isSeries(a, series) ? `${a.severity} series` : a.severity, text: `${a.severity} · ${a.metric} ${JSON.stringify(a.labels)} since ${a.started_at}` }))
        : [el("li", { text: "No alert firing." })]),
    );
    if (series) $("live-series").textContent = body.alerts.some((a) => isSeries(a, series)) ? "firing now" : "not firing now";
    state.live.updates += 1;
    state.live.last = body;
    state.charts.live.points = countPoints(chart);
    const missing = body.missing_partitions.length
      ? ` · partial: partitions ${body.missing_partitions.join(", ")} did not answer`
      : "";
    $("status").textContent = `${project} · live, as of ${body.as_of}${missing}`;
    $("status").className = missing ? "warn" : "";
  } catch (error) {
    state.live.errors += 1;
    $("status").textContent = `live data unavailable, retrying (${String(error.message || error).slice(0, 120)})`;
    $("status").className = "warn";
  }
  setTimeout(() => pollLive(project, pollMs), pollMs);
}

function renderLive(project) {
  for (const node of document.querySelectorAll(".dates")) node.hidden = true;
  $("kpis").replaceChildren(
    tile("active_users", "active users (last 5 min)"),
    tile("events_per_minute", "events / min (last 5 min)"),
    tile("error_rate", "error rate (last 5 min)"),
    tile("open_alerts", "open alerts"),
  );
  const canvas = el("canvas", { "aria-label": "events per minute", role: "img" });
  $("panels").replaceChildren(
    el(
      "article",
      { class: "panel wide", id: "panel-live", "data-panel": "live" },
      el("h3", { text: "Last 30 minutes, per minute" }),
      el("p", { class: "description", text: "From the stream tier's live API (/live/{project}/timeseries), refreshed every few seconds." }),
      el("div", { class: "chart" }, canvas),
    ),
    el("article", { class: "panel" }, el("h3", { text: "Open alerts" }), el("ul", { id: "live-alerts" })),
  );
  const series = alertSeries();
  if (series) {
    const labels = Object.entries(series.labels).map(([key, value]) => ` ${key}=${value}`).join("");
    $("panels").prepend(
      el("article", { class: "panel wide", id: "panel-series" }, el("h3", { text: `Alert series: ${series.metric}${labels}` }), el("p", { id: "live-series", text: "…" })),
    );
  }
  charts.live = lineOrBar(canvas, {
    chart: { kind: "line", percent: false, stacked: false },
    labels: [],
    series: ["events", "active users", "failures"].map((name) => ({ name, data: [] })),
  });
  state.charts.live = { kind: "line", points: 0 };
  pollLive(project, Number(document.body.dataset.pollMs) || 3000);
}

function renderHealth(body) {
  const row = (s) =>
    el(
      "tr",
      { "data-health": s.name, "data-status": s.status },
      el("td", { text: s.kind === "stage" ? s.title : `endpoint ${s.title}` }),
      el("td", {}, el("span", { class: `chip ${s.status}`, text: s.status })),
      el("td", { text: s.reason }),
      el("td", { class: "rule", text: s.rule }),
    );
  const head = el("tr", {}, ...["Component", "Status", "Why", "Rule"].map((name) => el("th", { text: name })));
  const missing = Object.entries(body.sources).filter(([, answered]) => !answered).map(([source]) => source);
  $("health-note").textContent = `As of ${body.as_of}` + (missing.length ? ` · not answering: ${missing.join(", ")}` : "");
  $("health-table").replaceChildren(head, ...body.statuses.map(row));
}

async function pollHealth(project, pollMs) {
  try {
    const body = await getJson(`/api/health/${encodeURIComponent(project)}`);
    renderHealth(body);
    state.health.updates += 1;
    state.health.last = body;
  } catch (error) {
    state.health.errors += 1;
    $("health-note").textContent = `system health unavailable, retrying (${String(error.message || error).slice(0, 120)})`;
    for (const chip of document.querySelectorAll("#health-table .chip")) (chip.className = "chip unknown"), (chip.textContent = "unknown");
  }
  setTimeout(() => pollHealth(project, pollMs), pollMs);
}

function startHealth(project) {
  $("health").replaceChildren(
    el(
      "article",
      { class: "panel wide", id: "panel-health", "data-panel": "system_health" },
      el("h3", { text: "System health" }),
      el("p", { class: "description", id: "health-note", text: "…" }),
      el("p", {
        class: "description",
        text: "One status per pipeline stage, per monitored API endpoint (PRAVIS_DASHBOARDS_HEALTH_MONITORED_ENDPOINTS) and per other endpoint served in the last 5 minutes, from the stack monitor's /metrics and the live API. Red beats unknown, unknown beats amber and green: a source that does not answer is never shown as green.",
      }),
      el("table", { class: "alerts health", id: "health-table" }),
    ),
  );
  pollHealth(project, Number(document.body.dataset.healthPollMs) || 15000);
}

async function main() {
  const meta = await pickers();
  $("pickers").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = { project: $("project").value, from: $("from").value, to: $("to").value };
    if (page === "live") q.from = q.to = "";
    if (page === "product" && !$("funnel").closest("label").hidden) {
      q.funnel = $("funnel").value;
      q.breakdown = $("breakdown").value.trim();
    }
    if (page === "product" && !$("survey").closest("label").hidden) q.survey = $("survey").value;
    location.search = queryString(q);
  });
  if (HEALTH_PAGES.includes(page)) startHealth(meta.project);
  if (page === "live") renderLive(meta.project);
  else await renderPanels();
  state.ready = true;
  document.body.dataset.ready = "1";
}

main().catch((error) => {
  $("status").textContent = "Failed to load: " + error.message;
  $("status").className = "warn";
  state.failed = String(error);
});
