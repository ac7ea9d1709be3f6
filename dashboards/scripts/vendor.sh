#!/bin/sh
# Vendor the chart libraries at build time: install the pinned npm packages (package.json / package-lock.json) and
# copy their minified UMD builds and licenses into the Python package, so no page ever loads a CDN at run time.
set -eu
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --ignore-scripts
out=src/pravis_dashboards/static/vendor
mkdir -p "$out"
cp node_modules/chart.js/dist/chart.umd.min.js "$out/chart.umd.min.js"
cp node_modules/chart.js/LICENSE.md "$out/chart.js.LICENSE.md"
cp node_modules/chartjs-chart-matrix/dist/chartjs-chart-matrix.min.js "$out/chartjs-chart-matrix.min.js"
cp node_modules/chartjs-chart-matrix/LICENSE "$out/chartjs-chart-matrix.LICENSE.md"
version() { node -p "require('./node_modules/$1/package.json').version"; }
{
  echo "Vendored by scripts/vendor.sh from npm; do not edit."
  echo "chart.js $(version chart.js) (https://www.npmjs.com/package/chart.js), MIT: chart.js.LICENSE.md"
  echo "chartjs-chart-matrix $(version chartjs-chart-matrix) (https://www.npmjs.com/package/chartjs-chart-matrix)," \
    "MIT: chartjs-chart-matrix.LICENSE.md"
} > "$out/README"
rm -rf node_modules
