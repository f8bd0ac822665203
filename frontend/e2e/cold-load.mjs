// What a first visit to the login page transfers, as Chromium counts it (bytes over the wire:
// headers and bodies as sent), and what a second visit in the same browser transfers.
// Run after `npm run build` and `cargo build -p letschat`:
//   node e2e/cold-load.mjs            (LETSCHAT_BIN and E2E_DIST as for the e2e run)
// Figures in docs/performance.md, "Web delivery".
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, coldLoad, Server } from "./harness.mjs";

const server = new Server();
let browser;
try {
  await server.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const load = await coldLoad(browser, `${server.origin}/login`, "Welcome back", { repeat: true });
  for (const [name, visit] of [["first visit", load], ["second visit", load.repeat]]) {
    console.log(`${name}: ${visit.requests.length} requests, ${visit.bytes} bytes`);
    for (const r of visit.requests) {
      const path = new URL(r.url).pathname;
      console.log(`  ${String(r.status).padEnd(4)}${String(r.bytes).padStart(8)}  ${r.encoding.padEnd(9)}${r.fromCache ? "(cache) " : ""}${path}  ${r.cache}`);
    }
  }
} finally {
  await browser?.close();
  await server.stop();
  server.cleanup();
}
