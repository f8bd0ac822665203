// Checks every screen of the e2e run is put through, at phone and desktop widths:
// - layout: nothing visible sticks out of a box that clips it or out of the window, nothing
//   scrolls sideways except the places meant to, and no clipped box hides part of its content
//   without an ellipsis (so a time, a badge or a button can never be pushed out of sight);
// - accessibility: axe-core, run inside the page, with no serious or critical violation.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { assert, assertEqual, coldLoad, probeContentSecurityPolicy, sleep, until } from "./harness.mjs";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** Widths every screen is checked at: small and common phones, a laptop and a wide desktop. */
export const LAYOUT_SIZES = [
  { width: 320, height: 640 },
  { width: 360, height: 740 },
  { width: 1280, height: 800 },
  { width: 1440, height: 900 },
];
/** The widths axe runs at (what is shown differs between phone and desktop). */
export const AXE_WIDTHS = [360, 1280];

/** Places meant to scroll sideways on a phone (wide tables, the row of admin tabs, the files
 * attached to a message being written); on a desktop nothing may need to. */
export const SIDEWAYS_SCROLLERS = [".admin__table-wrap", ".admin__tabs", ".tray__list"];
const PHONE_MAX_WIDTH = 767;

/** Waits for layout to settle: two frames, then every finite animation and transition done. */
export async function settled(page) {
  await page.evaluate(async () => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => r(undefined)));
    await frame();
    await frame();
    const finite = document.getAnimations().filter((a) => {
      const t = a.effect?.getComputedTiming();
      return t && t.iterations !== Infinity && a.playState === "running";
    });
    await Promise.all(finite.map((a) => a.finished.catch(() => undefined)));
    await frame();
  });
}

/** Layout problems on the page as it is now, as sentences naming the elements. */
export async function layoutProblems(page) {
  const width = page.viewportSize()?.width ?? 0;
  const scrollers = width <= PHONE_MAX_WIDTH ? SIDEWAYS_SCROLLERS : [];
  return page.evaluate((scrollers) => {
    const TOLERANCE = 1;
    const problems = [];
    const name = (el) => {
      if (el === document.documentElement) return "the page";
      const parts = [];
      let e = el;
      for (let i = 0; e && e !== document.body && i < 3; i++, e = e.parentElement) {
        const cls = [...e.classList].filter((c) => !c.startsWith("is-") && !c.startsWith("has-")).slice(0, 2);
        const label = e.getAttribute("aria-label");
        parts.unshift(`${e.tagName.toLowerCase()}${cls.map((c) => `.${c}`).join("")}${i === 0 && label ? `[aria-label="${label.slice(0, 40)}"]` : ""}`);
      }
      const text = (el.textContent ?? "").replace(/\s+/gu, " ").trim().slice(0, 40);
      return `${parts.join(" > ")}${text ? ` ("${text}")` : ""}`;
    };
    const isControl = (el) =>
      el.matches(
        'a[href], button, input, textarea, select, summary, time, output, .badge, [role="button"], [role="link"], [role="tab"], [role="status"], [role="alert"], [tabindex]:not([tabindex="-1"])',
      );
    const visible = (el) => {
      if (!el.checkVisibility({ checkVisibilityCSS: true })) return false;
      const r = el.getBoundingClientRect();
      return r.width > 1 && r.height > 1;
    };
    const clips = (s) => s.overflowX !== "visible";
    const ellipsis = (s) => s.textOverflow === "ellipsis" && s.overflowX !== "visible";
    const sideways = (el) => scrollers.some((sel) => el.matches(sel));
    const px = (n) => Math.round(n);

    // The window: nothing may make the page wider than the window.
    const root = document.scrollingElement ?? document.documentElement;
    const viewWidth = root.clientWidth;
    if (root.scrollWidth > viewWidth + TOLERANCE) {
      const wide = [...document.body.querySelectorAll("*")].filter((el) => visible(el) && el.getBoundingClientRect().right > viewWidth + TOLERANCE);
      const outermost = wide.filter((el) => !wide.includes(el.parentElement));
      problems.push(
        `the page is ${root.scrollWidth - viewWidth} px wider than the ${viewWidth} px window, because of: ${outermost.slice(0, 4).map(name).join("; ")}`,
      );
    }
    // A page whose window does not scroll must fit it: what is below is out of reach.
    const rootStyle = getComputedStyle(document.body);
    if (rootStyle.overflowY === "hidden" && root.scrollHeight > root.clientHeight + TOLERANCE) {
      problems.push(`the page is ${root.scrollHeight - root.clientHeight} px taller than the window, which does not scroll: the rest is out of reach`);
    }

    const offenders = new Map(); // element -> container it sticks out of
    for (const el of document.body.querySelectorAll("*")) {
      if (!visible(el)) continue;
      // Text cut short with an ellipsis is the intended look: its own box is what is checked.
      let inEllipsis = false;
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        if (ellipsis(getComputedStyle(a))) {
          inEllipsis = true;
          break;
        }
      }
      if (inEllipsis) continue;
      const style = getComputedStyle(el);
      const r = el.getBoundingClientRect();

      // A box that clips or scrolls must not hide content sideways (nor, when it only clips,
      // below), unless it ends its text with an ellipsis or is meant to scroll sideways. Text
      // fields scroll what is typed into them by nature.
      if (clips(style) && !ellipsis(style) && !sideways(el) && !el.matches("input, textarea, select")) {
        const over = el.scrollWidth - el.clientWidth;
        if (over > TOLERANCE)
          problems.push(`${name(el)} hides ${over} px of its content sideways (overflow ${style.overflowX}, no ellipsis)`);
        const hidesBelow = style.overflowY === "hidden" || style.overflowY === "clip";
        const under = el.scrollHeight - el.clientHeight;
        if (hidesBelow && under > TOLERANCE) problems.push(`${name(el)} cuts off ${under} px of its content at the bottom (overflow ${style.overflowY})`);
      }

      // Inside every box that clips it (up to one meant to scroll sideways), within the window.
      for (let a = el.parentElement; a; a = a.parentElement) {
        if (a === document.body || a === document.documentElement) {
          if (r.left < -TOLERANCE || r.right > viewWidth + TOLERANCE)
            offenders.set(el, { container: "the window", from: px(r.left), to: px(r.right), box: `0–${viewWidth}` });
          break;
        }
        const s = getComputedStyle(a);
        if (!clips(s)) continue;
        if (sideways(a)) break;
        const ar = a.getBoundingClientRect();
        const left = ar.left + a.clientLeft;
        const right = left + a.clientWidth;
        if (r.left < left - TOLERANCE || r.right > right + TOLERANCE) {
          offenders.set(el, { container: name(a), from: px(r.left), to: px(r.right), box: `${px(left)}–${px(right)}` });
          break;
        }
      }
    }
    // Report the outermost element that sticks out, and every control among those inside it.
    for (const [el, o] of offenders) {
      const parent = el.parentElement;
      const parentToo = parent && offenders.get(parent)?.container === o.container;
      if (parentToo && !isControl(el)) continue;
      problems.push(`${isControl(el) ? "control " : ""}${name(el)} is drawn at x ${o.from}–${o.to}, outside ${o.container} (x ${o.box})`);
    }
    return problems;
  }, scrollers);
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function axeProblems(page) {
  const loaded = await page.evaluate(() => typeof window.axe !== "undefined");
  if (!loaded) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary ?? "" })),
    }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map(
      (v) =>
        `axe ${v.impact} ${v.id}: ${v.help} — ${v.nodes.length} element(s): ${v.nodes
          .slice(0, 3)
          .map((n) => `${n.target} (${n.summary.replace(/\s+/gu, " ").slice(0, 160)})`)
          .join("; ")}`,
    );
}

/**
 * Puts the screen the page shows through the layout check at every size in LAYOUT_SIZES and
 * through axe at AXE_WIDTHS, then gives the page its own size back. Throws with every problem
 * found, each with the size it was seen at.
 */
export async function checkScreen(page, screen, { axe = true } = {}) {
  const own = page.viewportSize();
  const problems = [];
  try {
    for (const size of LAYOUT_SIZES) {
      await page.setViewportSize(size);
      await settled(page);
      await sleep(50);
      for (const p of await layoutProblems(page)) problems.push(`[${size.width}×${size.height}] ${p}`);
      if (axe && AXE_WIDTHS.includes(size.width))
        for (const p of await axeProblems(page)) problems.push(`[${size.width}×${size.height}] ${p}`);
    }
  } finally {
    if (own) await page.setViewportSize(own);
    await settled(page);
  }
  if (problems.length > 0) throw new Error(`screen "${screen}":\n  ${problems.slice(0, 25).join("\n  ")}${problems.length > 25 ? `\n  … and ${problems.length - 25} more` : ""}`);
  checkedScreens.push(screen);
}

/** The screens checked so far in this run, for the summary. */
export const checkedScreens = [];

// ---- delivery: the policies at work in the browser, and what a first visit costs -------------

/** The page's Content-Security-Policy refuses an inline script and an eval, and the browser
 * reports both (the reports are the probe's, not errors). */
export async function checkPolicyEnforced(page, errors) {
  const { ran, violations } = await probeContentSecurityPolicy(page, errors);
  assertEqual(ran, { inlineScript: false, eval: false }, "what the policy forbids did not run");
  assert(violations.length >= 2, `the browser reported both violations (got: ${violations.join(", ")})`);
}

/** Swagger UI renders its operations under its own policy (a violation, watched by the
 * harness, fails the step). */
export async function checkSwaggerUi(page) {
  await page.goto("/api/docs/");
  await page.locator(".opblock").first().waitFor();
  const operations = await page.locator(".opblock").count();
  assert(operations > 20, `the operations are listed (${operations})`);
  await settled(page);
}

/** The WebSocket reference: linked from Swagger UI's intro (it opens in a new tab, `popup`), a
 * page of its own with every frame, whose contents jump to the frame named. */
export async function checkWebSocketDocs(page) {
  await page.goto("/api/docs/");
  const link = page.getByRole("link", { name: "WebSocket protocol reference" });
  await link.waitFor();
  assertEqual(await link.getAttribute("href"), "/api/docs/websocket", "the intro links to the reference");
  const [reference] = await Promise.all([page.context().waitForEvent("page"), link.click()]);
  await reference.getByRole("heading", { level: 1, name: "Let's Chat WebSocket protocol" }).waitFor();
  assertEqual(new URL(reference.url()).pathname, "/api/docs/websocket", "the link opened the reference");
  const frames = await reference.locator("section.frame").count();
  assert(frames >= 18, `every frame has its section (${frames})`);
  await reference.locator("nav.toc a[href='#server-ack']").click();
  await until(() => reference.evaluate(() => location.hash === "#server-ack"), "the contents jump to a frame");
  const top = await reference.locator("#server-ack").evaluate((el) => el.getBoundingClientRect().top);
  assert(Math.abs(top) < 40, `the frame is at the top of the window (${top})`);
  await reference.evaluate(() => window.scrollTo(0, 0));
  await settled(reference);
  return reference;
}

/** A first visit to the login page: its script and styles come brotli-compressed and cached for
 * good, and the whole visit stays far below the uncompressed script alone. */
export async function checkColdLoad(browser, origin) {
  const load = await coldLoad(browser, `${origin}/login`, "Welcome back");
  const assets = load.requests.filter((r) => new URL(r.url).pathname.startsWith("/assets/"));
  assert(assets.length >= 2, `the page loaded its script and styles: ${JSON.stringify(load.requests)}`);
  for (const r of assets) assertEqual([r.status, r.encoding, r.cache], [200, "br", "public, max-age=31536000, immutable"], r.url);
  // 95 KB when this was written (the script alone is 321 KB before compression).
  assert(load.bytes < 200_000, `a first visit took ${load.bytes} bytes: ${JSON.stringify(load.requests)}`);
  console.log(`    first visit to /login: ${load.requests.length} requests, ${load.bytes} bytes over the wire`);
}
