#!/usr/bin/env bash
# Rebuild explorer/resources/plotly/: plotly's widget module with plotly.js's cartesian
# dist bundle in place of the full one (issue 29: a third of the JavaScript per page).
# Reproducible: the npm packages are pinned (package.json, package-lock.json), the input is
# the installed plotly's widgetbundle.js, and the manifest records both files' sha256.
# explorer.compat.plotly serves the result only to the plotly it was built from.
# usage: scripts/plotly_cartesian/build.sh [PYTHON]   (needs node and npm)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${1:-python}"
plotly_version="$("$python" -c 'import importlib.metadata as m; print(m.version("plotly"))')"
bundle="$("$python" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("plotly"); print(pathlib.Path(s.origin).parent / "package_data" / "widgetbundle.js")')"
plotlyjs="$(node -p 'require(process.argv[1]).dependencies["plotly.js-cartesian-dist-min"]' "$here/package.json")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$here/splice.mjs" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
out="$root/explorer/resources/plotly"
mkdir -p "$out"
node "$work/splice.mjs" "$bundle" \
  "$work/node_modules/plotly.js-cartesian-dist-min/plotly-cartesian.min.js" \
  "$out/widgetbundle-cartesian.js" "$plotlyjs"
cat > "$out/manifest.json" <<JSON
{
  "plotly": "$plotly_version",
  "plotly.js": "$plotlyjs",
  "traces": ["bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour", "image", "pie", "scatter", "scatterternary", "violin"],
  "source_sha256": "$(sha256sum "$bundle" | cut -d' ' -f1)",
  "sha256": "$(sha256sum "$out/widgetbundle-cartesian.js" | cut -d' ' -f1)"
}
JSON
echo "wrote $out/manifest.json"
