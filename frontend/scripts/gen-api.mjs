// Generates src/api/schema.d.ts from ../openapi.yaml with openapi-typescript, or with --check
// fails when the committed file differs from what the spec generates (the second stage of the
// Rust -> openapi.yaml -> TypeScript staleness lock).
//
// OpenAPI requires operationIds to be unique; openapi-typescript keys its `operations`
// interface by them, so two operations sharing an id (e.g. `list` for contacts and rooms)
// would silently share one type. Duplicates are renamed `<tag>_<id>` before generating, with a
// warning, so the generated types stay correct; with unique ids this step changes nothing.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const specPath = resolve(here, "../../openapi.yaml");
const outPath = resolve(here, "../src/api/schema.d.ts");
const check = process.argv.includes("--check");

const spec = yaml.load(readFileSync(specPath, "utf8"));
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const ops = [];
for (const item of Object.values(spec.paths ?? {})) {
  for (const m of METHODS) if (item[m]?.operationId) ops.push(item[m]);
}
const counts = new Map();
for (const op of ops) counts.set(op.operationId, (counts.get(op.operationId) ?? 0) + 1);
for (const op of ops) {
  if (counts.get(op.operationId) > 1) {
    const renamed = `${op.tags?.[0] ?? "op"}_${op.operationId}`;
    console.warn(`warning: operationId "${op.operationId}" is not unique in openapi.yaml; typed as "${renamed}"`);
    op.operationId = renamed;
  }
}

const ast = await openapiTS(spec);
const generated = COMMENT_HEADER + astToString(ast);

if (check) {
  let current = "";
  try {
    current = readFileSync(outPath, "utf8");
  } catch {
    // missing counts as stale
  }
  if (current !== generated) {
    console.error("src/api/schema.d.ts is stale: it does not match ../openapi.yaml. Run `npm run gen:api` (or `make openapi`).");
    process.exit(1);
  }
  console.log("src/api/schema.d.ts is up to date with ../openapi.yaml");
} else {
  writeFileSync(outPath, generated);
  console.log(`wrote ${outPath}`);
}
