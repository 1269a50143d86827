// Builds the web client into dist/: the bundle (esbuild, pinned by package-lock.json) and the
// static files. `node build.mjs --check` builds in memory and fails if dist/ differs, so a
// stale committed bundle is caught by scripts/test.sh (dist/ is committed: decisions.md).
import { build } from "esbuild";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const check = process.argv.includes("--check");

const result = await build({
  entryPoints: [here("src/app/main.ts")],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  write: false,
  outfile: here("dist/app.js"),
  logLevel: "warning",
});

const files = new Map([
  ["app.js", result.outputFiles[0].contents],
  ["index.html", readFileSync(here("static/index.html"))],
  ["style.css", readFileSync(here("static/style.css"))],
]);

if (check) {
  const stale = [...files].filter(([name, bytes]) => {
    const path = here(`dist/${name}`);
    return !existsSync(path) || Buffer.compare(readFileSync(path), Buffer.from(bytes)) !== 0;
  });
  if (stale.length > 0) {
    console.error(`web/dist is stale (${stale.map(([n]) => n).join(", ")}): run \`npm run build\` in web/ and commit web/dist`);
    process.exit(1);
  }
  console.log("web/dist is up to date");
} else {
  mkdirSync(here("dist"), { recursive: true });
  for (const [name, bytes] of files) writeFileSync(here(`dist/${name}`), bytes);
  console.log(`built web/dist: ${[...files].map(([n, b]) => `${n} ${b.length} B`).join(", ")}`);
}
