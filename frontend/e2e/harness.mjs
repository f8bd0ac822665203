// The end-to-end harness: runs the real letschat server (fresh SQLite database, the built SPA as
// its static folder) and Debian's Chromium through playwright-core, plus a tiny step runner that
// ends with the summary line "N passed, M failed".
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const frontendDir = resolve(here, "..");
export const repoDir = resolve(frontendDir, "..");

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/** The largest upload the test server takes (3 MiB), so a bigger file meets its 413. */
export const MAX_UPLOAD_BYTES = 3 * 1024 * 1024;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port below 32768 (outside the range the kernel hands out for outgoing connections). */
export async function freePort() {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const ok = await new Promise((res) => {
      const srv = net.createServer();
      srv.once("error", () => res(false));
      srv.listen(port, "127.0.0.1", () => srv.close(() => res(true)));
    });
    if (ok) return port;
  }
  throw new Error("no free port found below 32768");
}

export class Server {
  constructor() {
    this.bin = resolve(frontendDir, process.env.LETSCHAT_BIN ?? "../target/debug/letschat");
    this.dist = resolve(frontendDir, process.env.E2E_DIST ?? "dist");
    if (!existsSync(this.bin)) throw new Error(`server binary not found at ${this.bin} (set LETSCHAT_BIN, or cargo build -p letschat)`);
    if (!existsSync(join(this.dist, "index.html"))) throw new Error(`no built app at ${this.dist} (npm run build first)`);
    this.dir = mkdtempSync(join(tmpdir(), "letschat-e2e-"));
    this.logPath = join(this.dir, "server.log");
    this.log = createWriteStream(this.logPath, { flags: "a" });
    this.proc = null;
    this.port = 0;
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    if (!this.port) this.port = await freePort();
    const env = {
      ...process.env,
      LETSCHAT_BIND: `127.0.0.1:${this.port}`,
      DATABASE_URL: `sqlite://${join(this.dir, "db.db")}`,
      LETSCHAT_STATIC_DIR: this.dist,
      LETSCHAT_JWT_SECRET: "e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
      LETSCHAT_BCRYPT_COST: "4",
      LETSCHAT_AUTH_RATE_PER_IP: "10000",
      LETSCHAT_AUTH_RATE_PER_PREFIX: "10000",
      // Uploads stay in the temp folder; a small limit lets a test meet the server's 413.
      LETSCHAT_UPLOAD_DIR: join(this.dir, "uploads"),
      LETSCHAT_MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
      RUST_LOG: process.env.RUST_LOG ?? "warn",
    };
    this.log.write(`\n--- start ${new Date().toISOString()} on ${this.port}\n`);
    const proc = spawn(this.bin, [], { env, stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout.pipe(this.log, { end: false });
    proc.stderr.pipe(this.log, { end: false });
    this.proc = proc;
    let exited = null;
    proc.once("exit", (code, sig) => (exited = { code, sig }));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`server exited (${JSON.stringify(exited)}): ${this.tail()}`);
      try {
        const r = await fetch(`${this.origin}/api/health`);
        if (r.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`server did not become healthy: ${this.tail()}`);
  }

  async stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const done = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 12_000);
    await done;
    clearTimeout(t);
  }

  tail(n = 30) {
    try {
      return readFileSync(this.logPath, "utf8").split("\n").slice(-n).join("\n");
    } catch {
      return "(no log)";
    }
  }

  cleanup() {
    this.log.end();
    if (!process.env.E2E_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** REST calls from the test itself (seeding, and checking tokens). */
export function restClient(origin) {
  return async function rest(method, path, { token, body } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(origin + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: r.status, json };
  };
}

/** Polls until fn() returns a truthy value. */
export async function until(fn, what, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for: ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(100);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}: expected ${e}, got ${a}`);
}

/**
 * Reports every Content-Security-Policy violation in the pages of `context` into `errors` (one
 * sentence each, naming `label`): the `securitypolicyviolation` events, and any console message
 * that mentions the policy (whatever its level; console errors in general are the caller's).
 * Violations a check provokes on purpose while `window.__cspProbe` is set go to
 * `probedViolations(page)` instead.
 */
export async function watchPolicyViolations(context, label, errors) {
  await context.exposeBinding("__letschatPolicyViolation", ({ page }, v) => {
    if (v.probe) {
      if (!probed.has(page)) probed.set(page, []);
      probed.get(page).push(v);
      return;
    }
    errors.push(
      `[${label}] Content-Security-Policy violation on ${v.documentURI}: ${v.effectiveDirective} refused ${v.blockedURI || "(inline)"}` +
        `${v.sourceFile ? ` at ${v.sourceFile}:${v.lineNumber}:${v.columnNumber}` : ""}${v.sample ? ` "${v.sample}"` : ""}`,
    );
  });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      const report = window.__letschatPolicyViolation;
      if (typeof report !== "function") return;
      void report({
        probe: window.__cspProbe === true,
        documentURI: e.documentURI,
        effectiveDirective: e.effectiveDirective,
        blockedURI: e.blockedURI,
        sourceFile: e.sourceFile,
        lineNumber: e.lineNumber,
        columnNumber: e.columnNumber,
        sample: e.sample,
        disposition: e.disposition,
      });
    });
  });
  const watch = (page) =>
    page.on("console", (m) => {
      if (probing.has(page) || !/content[- ]security[- ]policy/iu.test(m.text())) return;
      errors.push(`[${label}] console ${m.type()}: ${m.text()}`);
    });
  context.pages().forEach(watch);
  context.on("page", watch);
}

const probed = new WeakMap();
const probing = new WeakSet();

/**
 * Tries what the web client's policy must refuse, in `page` as it is (watched by
 * `watchPolicyViolations`): an inline script and a string handed to `setTimeout` (an eval). Says
 * whether either ran and which violations the browser reported. The console's complaints about
 * them are taken back out of `errors` (only those: anything else logged meanwhile stays).
 */
export async function probeContentSecurityPolicy(page, errors) {
  probing.add(page);
  probed.delete(page);
  const before = errors.length;
  try {
    const ran = await page.evaluate(async () => {
      window.__cspProbe = true;
      const script = document.createElement("script");
      script.textContent = "window.__cspInlineRan = true";
      document.head.append(script);
      setTimeout("window.__cspEvalRan = true", 0);
      await new Promise((r) => setTimeout(r, 100));
      window.__cspProbe = false;
      script.remove();
      return { inlineScript: window.__cspInlineRan === true, eval: window.__cspEvalRan === true };
    });
    // The reports and the console messages arrive on their own.
    await until(() => (probed.get(page)?.length ?? 0) >= 2, "the probe's violations are reported", 3000).catch(() => undefined);
    await sleep(200);
    return { ran, violations: [...(probed.get(page) ?? [])].map((v) => `${v.effectiveDirective} ${v.blockedURI}`) };
  } finally {
    probing.delete(page);
    const provoked = /violates the following Content Security Policy directive/u;
    const after = errors.splice(before).filter((e) => !provoked.test(e));
    errors.push(...after);
  }
}

/**
 * Loads `url` in a fresh context (nothing cached) and counts what crossed the wire: every
 * response's `encodedDataLength` (headers and body as sent, compressed or not), from Chromium's
 * own network events. Waits for the network to go quiet and for `readyText` on the page. With
 * `repeat`, loads it once more in the same context and counts that visit too (`repeat`).
 */
export async function coldLoad(browser, url, readyText, { repeat = false } = {}) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    let requests = new Map();
    cdp.on("Network.responseReceived", ({ requestId, response }) => {
      const headers = Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k.toLowerCase(), v]));
      requests.set(requestId, {
        url: response.url,
        status: response.status,
        type: headers["content-type"] ?? "",
        encoding: headers["content-encoding"] ?? "identity",
        cache: headers["cache-control"] ?? "",
        fromCache: response.fromDiskCache === true || response.fromMemoryCache === true,
        bytes: 0,
      });
    });
    cdp.on("Network.loadingFinished", ({ requestId, encodedDataLength }) => {
      const r = requests.get(requestId);
      if (r) r.bytes = encodedDataLength;
    });
    const visit = async () => {
      requests = new Map();
      await page.goto(url, { waitUntil: "networkidle" });
      if (readyText) await page.getByText(readyText).first().waitFor();
      await sleep(200);
      const list = [...requests.values()];
      return { requests: list, bytes: list.reduce((n, r) => n + r.bytes, 0) };
    };
    const first = await visit();
    return repeat ? { ...first, repeat: await visit() } : first;
  } finally {
    await context.close();
  }
}

/** Sequential steps; after the first failure the rest are skipped (they build on each other). */
export class Steps {
  constructor() {
    this.results = [];
    this.failed = false;
    /** What went wrong in a browser (console errors, uncaught exceptions, Content-Security-Policy
     * violations), pushed by whoever watches the pages: a step that ends with any fails. */
    this.browserErrors = [];
  }

  async run(name, fn) {
    if (this.failed) {
      this.results.push({ name, status: "skip" });
      console.log(`- skip  ${name}`);
      return;
    }
    const t0 = Date.now();
    try {
      await fn();
      if (this.browserErrors.length > 0) throw new Error(`errors in the browser:\n${this.browserErrors.join("\n")}`);
      const ms = Date.now() - t0;
      this.results.push({ name, status: "pass", ms });
      console.log(`✔ pass  ${name} (${ms} ms)`);
    } catch (err) {
      const ms = Date.now() - t0;
      this.failed = true;
      this.results.push({ name, status: "fail", ms, err });
      if (this.onFail) await this.onFail(name).catch(() => undefined);
      console.log(`✖ FAIL  ${name} (${ms} ms)\n    ${String(err?.stack ?? err).split("\n").join("\n    ")}`);
    }
  }

  skip(name, why) {
    this.results.push({ name, status: "skip", why });
    console.log(`- skip  ${name} (${why})`);
  }

  summary() {
    const passed = this.results.filter((r) => r.status === "pass").length;
    const failed = this.results.filter((r) => r.status === "fail").length;
    const skipped = this.results.filter((r) => r.status === "skip").length;
    return { passed, failed, skipped };
  }
}
