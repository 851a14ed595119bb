// plotly's widget module (plotly/package_data/widgetbundle.js, esbuild output) holds
// plotly.js's full dist bundle as one CommonJS factory: `var X=f((exports,module)=>{...})`.
// This swaps that factory's body for plotly.js's cartesian dist bundle (bar, scatter,
// heatmap and the other cartesian traces), found by parsing, never by text offsets.
// usage: node splice.mjs WIDGETBUNDLE CARTESIAN OUT PLOTLYJS_VERSION
import { readFileSync, writeFileSync } from "node:fs";
import * as acorn from "acorn";

const [bundlePath, cartesianPath, outPath, version] = process.argv.slice(2);
const bundle = readFileSync(bundlePath, "utf8");
const cartesian = readFileSync(cartesianPath, "utf8");
const ast = acorn.parse(bundle, { ecmaVersion: "latest", sourceType: "module" });
const marker = `e.version="${version}"`;
const found = [];
for (const node of ast.body) {
  if (node.type !== "VariableDeclaration") continue;
  for (const decl of node.declarations) {
    const init = decl.init;
    if (!init || init.type !== "CallExpression" || init.arguments.length !== 1) continue;
    const fn = init.arguments[0];
    if (fn.type !== "ArrowFunctionExpression" || fn.params.length !== 2) continue;
    if (fn.body.type !== "BlockStatement") continue;
    const body = bundle.slice(fn.body.start, fn.body.end);
    if (body.includes(marker) && body.includes("module.exports") === false &&
        body.includes("moduleName")) {
      found.push({ fn, params: fn.params.map((p) => p.name) });
    }
  }
}
if (found.length !== 1) {
  console.error(`expected one plotly.js ${version} factory, found ${found.length}`);
  process.exit(1);
}
const { fn, params } = found[0];
const [exportsName, moduleName] = params;
const body = `{(function (module, exports) {\n${cartesian}\n}).call(${exportsName}, ${moduleName}, ${exportsName});}`;
const out = bundle.slice(0, fn.body.start) + body + bundle.slice(fn.body.end);
acorn.parse(out, { ecmaVersion: "latest", sourceType: "module" });  // still a module
writeFileSync(outPath, out);
console.log(`${outPath}: ${out.length} bytes (was ${bundle.length})`);
