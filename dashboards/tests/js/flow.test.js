// The top-paths flow layout (static/flow.js) against positions worked out by hand.
"use strict";
const assert = require("node:assert/strict");
const { test } = require("node:test");
const { flowLayout } = require("../../src/pravis_dashboards/static/flow.js");

const SIZE = { width: 212, height: 100, nodeWidth: 12, gap: 10 };
// 10 units start at A: step 1 fills the 100 px alone, so 10 px per unit; columns 100 px apart.
const ROWS = [
  { steps: ["A", "B", "C"], units: 5 },
  { steps: ["A"], units: 2 },
  { steps: ["A", "D", "C"], units: 1 },
  { steps: ["A", "B"], units: 2 },
];

const brief = (n) => [n.column, n.label, n.value, n.x, n.y, n.height];

test("nodes stack by value, largest on top, one column per step", () => {
  const { nodes } = flowLayout(ROWS, SIZE);
  assert.deepEqual(nodes.map(brief), [
    [0, "A", 10, 0, 0, 100],
    [1, "B", 7, 100, 0, 70],
    [1, "D", 1, 100, 80, 10],
    [2, "C", 6, 200, 0, 60],
  ]);
});

test("links are as wide as their units and stacked in their neighbours' order at both ends", () => {
  const { links } = flowLayout(ROWS, SIZE);
  assert.deepEqual(
    links.map((l) => [l.source.label, l.target.label, l.units, l.width, l.sy, l.ty]),
    [
      ["A", "B", 7, 70, 35, 35],
      ["A", "D", 1, 10, 75, 85],
      ["B", "C", 5, 50, 25, 25],
      ["D", "C", 1, 10, 85, 55],
    ],
  );
});

test("the row order does not matter and equal values order by label", () => {
  const rows = [
    { steps: ["X", "Q"], units: 3 },
    { steps: ["X", "P"], units: 3 },
  ];
  const forward = flowLayout(rows, SIZE);
  assert.deepEqual(flowLayout([...rows].reverse(), SIZE), forward);
  // 6 units in 100 px; step 2 has two nodes and a gap: (100 - 10) / 6 = 15 px per unit.
  assert.deepEqual(forward.nodes.map(brief), [
    [0, "X", 6, 0, 0, 90],
    [1, "P", 3, 200, 0, 45],
    [1, "Q", 3, 200, 55, 45],
  ]);
  assert.deepEqual(
    forward.links.map((l) => [l.target.label, l.width, l.sy, l.ty]),
    [
      ["P", 45, 22.5, 22.5],
      ["Q", 45, 67.5, 77.5],
    ],
  );
});

test("a step repeated later in the path is its own node in that column", () => {
  const { nodes, links } = flowLayout([{ steps: ["A", "B", "A"], units: 4 }], SIZE);
  assert.deepEqual(nodes.map((n) => [n.column, n.label]), [[0, "A"], [1, "B"], [2, "A"]]);
  assert.equal(links.length, 2);
});

test("no rows, no chart", () => {
  assert.deepEqual(flowLayout([], SIZE), { nodes: [], links: [] });
});
