// Pravis dashboards: the layout of the top-paths flow chart (a Sankey), pure so node's test runner checks it
// (dashboards/tests/js); dashboards.js draws it as SVG from the rows the paths table shows.
"use strict";

// rows: [{ steps: ["page_view", "feature_use:search", ...], units }], one per path (steps 1..4).
// Columns are the steps; a node is an event at a step, its value the units whose path passes there; a link
// joins an event at step k to one at step k+1. Heights and link widths share one scale: the busiest column
// (step 1, as every path starts there) fills `height` less the gaps between its nodes. Nodes are ordered by
// value (largest on top), ties by label, so the order does not depend on the rows' order; a node's outgoing
// links are stacked in the order of their targets and its incoming links in the order of their sources, so
// ribbons do not cross at the nodes. y of a link (sy, ty) is its centre, since it is drawn as a stroke.
function flowLayout(rows, { width, height, nodeWidth = 12, gap = 10 }) {
  const nodes = new Map();
  const links = new Map();
  const node = (column, label) => {
    const key = `${column}\u0000${label}`;
    if (!nodes.has(key)) nodes.set(key, { column, label, value: 0, out: [], in: [] });
    return nodes.get(key);
  };
  for (const { steps, units } of rows) {
    steps.forEach((label, column) => (node(column, label).value += units));
    for (let column = 0; column + 1 < steps.length; column += 1) {
      const key = `${column}\u0000${steps[column]}\u0001${steps[column + 1]}`;
      if (!links.has(key)) {
        const link = { source: node(column, steps[column]), target: node(column + 1, steps[column + 1]), units: 0 };
        links.set(key, link);
        link.source.out.push(link);
        link.target.in.push(link);
      }
      links.get(key).units += units;
    }
  }
  if (!nodes.size) return { nodes: [], links: [] };
  const columns = [];
  for (const n of nodes.values()) (columns[n.column] ||= []).push(n);
  const byValue = (a, b) => b.value - a.value || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
  for (const column of columns) column.sort(byValue).forEach((n, i) => (n.order = i));
  const scale = Math.min(
    ...columns.map((c) => (height - gap * (c.length - 1)) / c.reduce((sum, n) => sum + n.value, 0)),
  );
  const step = columns.length > 1 ? (width - nodeWidth) / (columns.length - 1) : 0;
  for (const column of columns) {
    let y = 0;
    for (const n of column) {
      Object.assign(n, { x: n.column * step, y, height: n.value * scale });
      y += n.height + gap;
    }
  }
  for (const n of nodes.values()) {
    let sy = n.y;
    for (const link of n.out.sort((a, b) => a.target.order - b.target.order)) {
      link.width = link.units * scale;
      link.sy = sy + link.width / 2;
      sy += link.width;
    }
    let ty = n.y;
    for (const link of n.in.sort((a, b) => a.source.order - b.source.order)) {
      link.ty = ty + link.units * scale / 2;
      ty += link.units * scale;
    }
  }
  const strip = ({ out, in: _in, ...n }) => n;
  return {
    nodes: columns.flat().map(strip),
    links: [...links.values()]
      .sort((a, b) => a.source.column - b.source.column || a.source.order - b.source.order || a.target.order - b.target.order)
      .map((l) => ({ ...l, source: strip(l.source), target: strip(l.target) })),
  };
}

if (typeof module === "object" && module.exports) module.exports = { flowLayout };
