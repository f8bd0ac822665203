// End-to-end suite: two people in two browser contexts against the real server on a fresh
// database. Run with `npm run e2e` after `npm run build` and `cargo build -p letschat`.
// Env: LETSCHAT_BIN (default ../target/debug/letschat), CHROMIUM_PATH (default /usr/bin/chromium),
// E2E_HEADED=1 to watch, E2E_KEEP=1 to keep the temp folder (database, server log),
// E2E_SCREENSHOTS=0 to skip writing docs/screenshots.
//
// Every screen is also put through checks.mjs at phone and desktop widths (layout: nothing pushed
// out of sight; axe-core: no serious or critical violation), with data like real people's: long
// and 64-character names, long previews, unbroken words and URLs, emoji, Arabic and Hebrew.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import {
  assert,
  assertEqual,
  CHROMIUM,
  CHROMIUM_ARGS,
  frontendDir,
  MAX_UPLOAD_BYTES,
  repoDir,
  restClient,
  Server,
  sleep,
  Steps,
  until,
  watchPolicyViolations,
} from "./harness.mjs";
import {
  checkColdLoad,
  checkedScreens,
  checkPolicyEnforced,
  checkScreen,
  checkSwaggerUi,
  checkWebSocketDocs,
  settled,
} from "./checks.mjs";
import { panorama, pdf, portrait, restUpload, snapshot } from "./files.mjs";

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
/** The attachment screenshots' phone. */
const TALL_PHONE = { width: 390, height: 844 };
const PASSWORD = "correct horse battery";
const shotsDir = join(repoDir, "docs", "screenshots");

// What people really write and are called.
/** An ordinary first message, longer than a contact row is wide. */
const FIRST_MESSAGE = "Hi Bob, it's Alice! Are you free for a quick chat about the trip next week?";
/** Display names may have 64 characters; usernames 32. */
const LONG_NAME = "Maximiliana Alexandra Wolfeschlegelsteinhausen-Bergerdorff Smith";
const UNBROKEN_NAME = "Wolfeschlegelsteinhausenbergerdorffvoralternwarengewissenhaftsch";
const LONG_USERNAME = "maximiliana.wolfeschlegelstein_x";
const LONG_URL =
  "https://travel.example.com/trips/2025/lisbon-porto-coimbra/itinerary?stops=lisbon,sintra,porto,coimbra&passengers=4&share=8f3a9c2e7b1d4f60";
const UNBROKEN_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis".repeat(3);
const ARABIC_NAME = "ليلى عبد الرحمن";
const ARABIC = "مرحبا بوب! هل أنت متاح لمكالمة سريعة حول الرحلة الأسبوع المقبل؟ 🌍";
const HEBREW_NAME = "נועה כהן";
const HEBREW = "היי בוב! ראית את התמונות מהטיול? 😍 הן יצאו מדהימות";
const EMOJI = "🎉🥳🍕🎶🏕️🚆🌊☀️🎉🥳🍕🎶🏕️🚆🌊☀️🎉🥳🍕🎶🏕️🚆🌊☀️";
const takeShots = process.env.E2E_SCREENSHOTS !== "0";

const steps = new Steps();
/** A step that leaves anything here fails (console errors, page errors, policy violations). */
const consoleErrors = steps.browserErrors;
let server;
let browser;
let rest;
/** While the server is down or the browser offline on purpose, failed requests in the console are expected. */
let serverDown = false;
let browserOffline = false;

const openPages = new Map();
/** WebSockets each page opened and saw closed. */
const sockets = new WeakMap();
const socketsOf = (page) => ({ ...(sockets.get(page) ?? { opened: 0, closed: 0 }) });
const artifactsDir = join(frontendDir, "e2e", ".artifacts");
steps.onFail = async () => {
  mkdirSync(artifactsDir, { recursive: true });
  for (const [label, page] of openPages) {
    if (page.isClosed()) continue;
    await page.screenshot({ path: join(artifactsDir, `failure-${label}.png`) }).catch(() => undefined);
    console.log(`    [${label}] at ${page.url()} — screenshot in e2e/.artifacts/failure-${label}.png`);
  }
};

async function newPage(label, { viewport = DESKTOP, colorScheme = "light", notifications = false } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, baseURL: server.origin, locale: "en-GB", timezoneId: "UTC" });
  await watchPolicyViolations(context, label, consoleErrors);
  if (notifications) {
    // The user allowed notifications: record them instead of showing them.
    await context.addInitScript(() => {
      window.__notifications = [];
      class RecordingNotification {
        static permission = "granted";
        static requestPermission = async () => "granted";
        constructor(title, options = {}) {
          window.__notifications.push({ title, body: options.body ?? "" });
          this.onclick = null;
        }
        close() {}
      }
      window.Notification = RecordingNotification;
    });
  }
  const page = await context.newPage();
  openPages.set(label, page);
  const ws = { opened: 0, closed: 0 };
  sockets.set(page, ws);
  page.on("websocket", (w) => {
    ws.opened += 1;
    w.on("close", () => (ws.closed += 1));
  });
  page.setDefaultTimeout(10_000);
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    // The browser itself logs failed connections; they are expected while the server restarts
    // and after a logout revokes a token (the 401 that ends the session).
    if ((serverDown || browserOffline) && /Failed to load resource|WebSocket connection|ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED/u.test(text))
      return;
    // Chromium logs every 4xx response; the app expects some (a taken username, a room that is
    // not yours, a revoked token) and handles them. Script errors and 5xx still count.
    if (/Failed to load resource: the server responded with a status of 4\d\d/u.test(text)) return;
    consoleErrors.push(`[${label}] ${text}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`[${label}] page error: ${e.message}`));
  return { context, page };
}

async function register(page, username, displayName) {
  await page.goto("/register");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Display name (optional)").fill(displayName);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL((u) => u.pathname === "/");
}

async function login(page, username) {
  await page.goto("/login");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL((u) => u.pathname === "/");
}

async function tokenOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem("letschat.session") ?? "null")?.token ?? null);
}

async function shot(page, name) {
  if (!takeShots) return;
  await page.mouse.move(0, 0); // no hover left over from the last click
  await page.evaluate(() => document.fonts.ready);
  await sleep(350); // let transitions settle
  await page.screenshot({ path: join(shotsDir, `${name}.png`) });
}

const row = (page, username) => page.locator(`.contact-row[data-username="${username}"]`);
const badgeText = (page, username) =>
  row(page, username).evaluate((el) => el.querySelector(".badge")?.textContent?.trim() ?? "0", undefined, { timeout: 3000 });
const messageTexts = (page) => page.locator(".msg .msg__text").allTextContents();

/**
 * How a contact row is drawn: the boxes of the row, its time and badge, whether the preview is
 * cut with an ellipsis, and whether the time and the badge are what the eye sees at their centre
 * (not covered, not outside the list or the window).
 */
const rowLook = (page, username) =>
  row(page, username).evaluate((el) => {
    const box = (e) => {
      if (!e) return null;
      const r = e.getBoundingClientRect();
      return { left: Math.round(r.left), right: Math.round(r.right), top: r.top, bottom: r.bottom };
    };
    // The row's link lies over the whole row (transparent): hitting it counts as seeing what is under it.
    const link = el.querySelector(".contact-row__link");
    const seen = (e) => {
      if (!e) return false;
      const r = e.getBoundingClientRect();
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      return hit !== null && (e.contains(hit) || hit === link);
    };
    const preview = el.querySelector(".contact-row__preview");
    const time = el.querySelector(".contact-row__time");
    const badge = el.querySelector(".badge");
    return {
      window: document.documentElement.clientWidth,
      list: box(el.closest(".contacts__list")),
      row: box(el),
      time: box(time),
      badge: box(badge),
      timeSeen: seen(time),
      badgeSeen: seen(badge),
      previewCut: preview !== null && preview.scrollWidth > preview.clientWidth,
      previewEllipsis: preview !== null && getComputedStyle(preview).textOverflow === "ellipsis",
      label: link?.getAttribute("aria-label") ?? null,
    };
  });

/** Asserts a row with a long preview shows its time and unread badge, and cuts the preview with "…". */
async function assertRowShowsAll(page, username, what) {
  const look = await rowLook(page, username);
  const inside = (b, outer) => b !== null && outer !== null && b.left >= outer.left - 1 && b.right <= outer.right + 1;
  const where = `${what} at ${look.window} px: ${JSON.stringify(look)}`;
  assert(inside(look.row, look.list) && look.row.right <= look.window, `the row lies inside the list and the window (${where})`);
  assert(inside(look.time, look.row) && look.timeSeen, `the time is inside the row and visible (${where})`);
  assert(inside(look.badge, look.row) && look.badgeSeen, `the unread badge is inside the row and visible (${where})`);
  assert(look.previewCut && look.previewEllipsis, `the long preview is cut with an ellipsis (${where})`);
  return look;
}

async function addContactViaUi(page, query, username) {
  await page.getByRole("button", { name: "Find people" }).first().click();
  const dialog = page.getByRole("dialog", { name: "Find people" });
  await dialog.getByLabel("Search all users by name or username").fill(query);
  const result = dialog.locator(".user-result", { hasText: `@${username}` });
  await result.waitFor();
  await result.getByRole("button").click();
  await page.waitForURL(/\/chat\/\d+$/u);
  await dialog.waitFor({ state: "detached" });
}

async function send(page, text) {
  const box = page.locator(".composer textarea");
  await box.click();
  await box.fill(text);
  await box.press("Enter");
}

/** The message whose own text (not a quote of it) contains `text`. */
const bubbleOf = (page, text) => page.locator(".msg").filter({ has: page.locator(".msg__text", { hasText: text }) });

/** Opens a message's actions (the "⋯" button that shows on hover) and returns the menu. */
async function openActions(page, message) {
  await message.locator(".msg__bubble").hover();
  await message.locator(".msg__more").click();
  const menu = page.getByRole("dialog", { name: "Message actions" });
  await menu.waitFor();
  return menu;
}

/** A message's reaction chips as "emoji count" (with "*" for ours), in order. */
const chipsOf = (message) =>
  message.locator(".reaction").evaluateAll((els) =>
    els.map((e) => `${e.querySelector(".reaction__emoji")?.textContent}${e.querySelector(".reaction__count")?.textContent}${e.getAttribute("aria-pressed") === "true" ? "*" : ""}`),
  );

// ---- attachments -----------------------------------------------------------------------------

/**
 * Draws a photo in the page (a canvas, saved as JPEG) and starts dragging it over the
 * conversation: `dragenter` and `dragover` with a real DataTransfer holding the file. The drop
 * itself is `window.__drop()`, so the test can look at the drop zone first. Records every
 * progress value the tray shows in `window.__progress`.
 */
async function dragPhotoOver(page, name, width, height) {
  return page.evaluate(
    async ({ name, width, height }) => {
      const c = document.createElement("canvas");
      c.width = width;
      c.height = height;
      const g = c.getContext("2d");
      const sky = g.createLinearGradient(0, 0, 0, height);
      sky.addColorStop(0, "#28407a");
      sky.addColorStop(0.55, "#f29a5b");
      sky.addColorStop(1, "#3a2b4f");
      g.fillStyle = sky;
      g.fillRect(0, 0, width, height);
      g.fillStyle = "#ffe3a3";
      g.beginPath();
      g.arc(width * 0.62, height * 0.52, height * 0.08, 0, Math.PI * 2);
      g.fill();
      g.fillStyle = "#2a2140";
      for (let x = 0; x < width; x += 40) g.fillRect(x, height * 0.6 - 60 * Math.abs(Math.sin(x / 130)), 38, height);
      // Film grain: a photo's size, so the upload takes a moment on a slow line.
      const img = g.getImageData(0, 0, width, height);
      let seed = 7;
      for (let i = 0; i < img.data.length; i += 4) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        const n = (seed % 24) - 12;
        img.data[i] += n;
        img.data[i + 1] += n;
        img.data[i + 2] += n;
      }
      g.putImageData(img, 0, 0);
      const blob = await new Promise((r) => c.toBlob(r, "image/jpeg", 0.9));
      const file = new File([blob], name, { type: "image/jpeg" });
      window.__progress = [];
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('.tray-item [role="progressbar"]')) {
          const v = Number(el.getAttribute("aria-valuenow"));
          if (window.__progress[window.__progress.length - 1] !== v) window.__progress.push(v);
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["aria-valuenow"] });
      const dt = new DataTransfer();
      dt.items.add(file);
      const target = document.querySelector(".msglist__scroller");
      for (const type of ["dragenter", "dragover"]) target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
      window.__drop = () => target.dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true, dataTransfer: dt }));
      return file.size;
    },
    { name, width, height },
  );
}

/** Pastes a screenshot (a PNG drawn in the page) into the message box, as Ctrl+V would. */
async function pasteScreenshot(page) {
  await page.evaluate(async () => {
    const c = document.createElement("canvas");
    c.width = 640;
    c.height = 360;
    const g = c.getContext("2d");
    g.fillStyle = "#f5f6fa";
    g.fillRect(0, 0, 640, 360);
    g.fillStyle = "#4f46e5";
    g.fillRect(0, 0, 640, 48);
    g.fillStyle = "#141824";
    g.font = "28px sans-serif";
    g.fillText("Booking confirmed ✔ — Porto, 14–16 July", 24, 120);
    const blob = await new Promise((r) => c.toBlob(r, "image/png"));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], "image.png", { type: "image/png" }));
    const box = document.querySelector(".composer textarea");
    box.focus();
    box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
  });
}

/** A route that holds uploads until `release()` (so one can be seen, or cancelled, mid-way). */
function holdUploads() {
  const held = [];
  let holding = true;
  const handler = async (route) => {
    if (!holding) return route.fallback();
    await new Promise((resolve) => held.push(resolve));
    await route.abort().catch(() => undefined);
  };
  return {
    handler,
    count: () => held.length,
    release() {
      holding = false;
      for (const r of held.splice(0)) r();
    },
  };
}

/**
 * Asserts a long file name is shown cut in the middle — its start, "…", its end — as long as its
 * box allows: the text fills the box to within a character, with nothing clipped by the box.
 */
async function assertCutInTheMiddle(shown, start, end) {
  const look = await shown.evaluate((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return { text: el.textContent, drawn: range.getBoundingClientRect().width, box: el.clientWidth, scroll: el.scrollWidth };
  });
  const where = JSON.stringify(look);
  assert(look.text.startsWith(start) && look.text.endsWith(end) && look.text.includes("…"), `the name is cut in the middle: ${where}`);
  assert(!/[\s\-_]…|…\s/u.test(look.text), `no space or dash against the "…": ${where}`);
  assert(look.scroll <= look.box + 1, `nothing of the name is clipped by its box: ${where}`);
  assert(look.box - look.drawn < 16, `the name fills its box (no gap before what follows): ${where}`);
}

/** Whether a page's conversation is scrolled to its very bottom. */
const atBottom = (page) =>
  page.locator(".msglist__scroller").evaluate((el) => Math.abs(el.scrollHeight - el.scrollTop - el.clientHeight) < 2);

/** A photo box's drawn size, [width, height] in whole pixels. */
const drawnSize = (locator) =>
  locator.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return [Math.round(r.width), Math.round(r.height)];
  });

/** Whether every photo on the page has loaded. */
const photosLoaded = (page) =>
  page.evaluate(() => [...document.querySelectorAll(".media__tile img")].every((i) => i.complete && i.naturalWidth > 0));

async function main() {
  mkdirSync(shotsDir, { recursive: true });
  server = new Server();
  await server.start();
  rest = restClient(server.origin);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: !process.env.E2E_HEADED, args: CHROMIUM_ARGS });

  const wsProbe = await fetch(`${server.origin}/api/ws`).catch(() => null);
  const hasWs = wsProbe !== null && wsProbe.status !== 404;
  console.log(`server ${server.origin}; WebSocket /api/ws ${hasWs ? "present" : "MISSING (live steps will be skipped)"}`);
  const live = (name, fn) => (hasWs ? steps.run(name, fn) : steps.skip(name, "no /api/ws on this server"));

  const A = await newPage("alice", { notifications: true });
  const B = await newPage("bob");
  const alice = A.page;
  const bob = B.page;
  let roomAB = 0;

  await steps.run("the server serves the app, with client-side routes falling back to index.html", async () => {
    for (const path of ["/", "/login", "/chat/42", "/some/deep/link"]) {
      const r = await fetch(server.origin + path);
      assertEqual(r.status, 200, `GET ${path}`);
      assert((await r.text()).includes('<div id="root">'), `GET ${path} is the SPA`);
    }
  });

  await steps.run("a logged-out visitor lands on the login page", async () => {
    await alice.goto("/");
    await alice.waitForURL((u) => u.pathname === "/login");
    await alice.getByRole("heading", { name: "Welcome back" }).waitFor();
    await shot(alice, "login-desktop");
    await checkScreen(alice, "log in");
  });

  await steps.run("the app runs under its Content-Security-Policy: inline script and eval are refused", () =>
    checkPolicyEnforced(alice, consoleErrors),
  );
  await steps.run("Swagger UI works under its own policy: the operations render and nothing is refused", async () => {
    const { page, context } = await newPage("docs", { viewport: { width: 1280, height: 900 } });
    await checkSwaggerUi(page);
    await shot(page, "api-docs-desktop");
    await page.setViewportSize(TALL_PHONE);
    await settled(page);
    await shot(page, "api-docs-phone");
    await context.close();
  });
  await steps.run("the WebSocket reference opens from Swagger UI's intro and reads well from a phone to a desktop, with no script", async () => {
    const { page, context } = await newPage("websocket-docs", { viewport: { width: 1280, height: 900 } });
    const reference = await checkWebSocketDocs(page);
    openPages.set("websocket-reference", reference);
    await checkScreen(reference, "WebSocket reference");
    await checkPolicyEnforced(reference, consoleErrors);
    await shot(reference, "websocket-docs-desktop");
    await reference.setViewportSize(TALL_PHONE);
    await settled(reference);
    await shot(reference, "websocket-docs-phone");
    await reference.goto("/api/docs/websocket#server-message-updated");
    await settled(reference);
    await shot(reference, "websocket-docs-frame-phone");
    await context.close();
  });
  await steps.run("a cold load of the login page comes compressed, its hashed assets cached for good", () =>
    checkColdLoad(browser, server.origin),
  );

  await steps.run("registering validates the form before calling the server", async () => {
    await alice.goto("/register");
    await alice.getByLabel("Username").fill("a");
    await alice.getByLabel("Password").fill("short");
    await alice.getByRole("button", { name: "Create account" }).click();
    await alice.getByText("3–32 characters").waitFor();
    await alice.getByText("At least 8 characters.").first().waitFor();
    await checkScreen(alice, "sign up, with errors");
  });

  await steps.run("alice and bob register in two browser contexts and see the empty state", async () => {
    await register(alice, "alice", "Alice Liddell");
    await alice.getByRole("heading", { name: "No conversations yet" }).waitFor();
    await shot(alice, "empty-state-desktop");
    await checkScreen(alice, "no conversations yet");
    await register(bob, "bob", "Bob Marley");
    await bob.getByRole("heading", { name: "No conversations yet" }).waitFor();
  });

  await steps.run("a taken username is refused with a clear message", async () => {
    const { page, context } = await newPage("carol-dup");
    await page.goto("/register");
    await page.getByLabel("Username").fill("Alice");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByText("This username is taken").waitFor();
    await context.close();
  });

  await steps.run("alice searches all users and adds bob; bob adds alice back", async () => {
    await alice.getByRole("button", { name: "Find people" }).first().click();
    const dialog = alice.getByRole("dialog", { name: "Find people" });
    await dialog.getByLabel("Search all users by name or username").fill("bo");
    await dialog.locator(".user-result", { hasText: "@bob" }).waitFor();
    await checkScreen(alice, "find people");
    await dialog.locator(".user-result", { hasText: "@bob" }).getByRole("button", { name: /Add Bob/u }).click();
    await alice.waitForURL(/\/chat\/\d+$/u);
    roomAB = Number(new URL(alice.url()).pathname.split("/").pop());
    await alice.getByRole("heading", { name: "Say hello to Bob Marley" }).waitFor();
    await row(alice, "bob").waitFor();
    await checkScreen(alice, "a new conversation");

    await addContactViaUi(bob, "alice", "alice");
    assertEqual(Number(new URL(bob.url()).pathname.split("/").pop()), roomAB, "both are in the same room");
    // bob goes back to the list to watch the badge
    await bob.goto("/");
    await row(bob, "alice").waitFor();
  });

  await live("presence: each sees the other online", async () => {
    await row(alice, "bob").locator(".avatar__dot.is-online").waitFor();
    await row(bob, "alice").locator(".avatar__dot.is-online").waitFor();
    await alice.locator(".conv__status", { hasText: "online" }).waitFor();
  });

  await live("alice sends with Enter; bob sees it live with an unread badge and the title count", async () => {
    await send(alice, FIRST_MESSAGE);
    await alice.locator('.msg.is-own[data-state="sent"], .msg.is-own[data-state="read"]').first().waitFor();
    await until(async () => (await badgeText(bob, "alice")) === "1", "bob's badge shows 1");
    await until(async () => (await bob.title()).startsWith("(1)"), "bob's title shows (1)");
    await row(bob, "alice").locator(".contact-row__preview", { hasText: "Hi Bob, it's Alice!" }).waitFor();
  });

  await live("a long first message: bob's row keeps its time and unread badge in view and ends the preview in “…”", async () => {
    // The screen reader hears it all, without a stray space before the colon.
    const { label } = await rowLook(bob, "alice");
    assertEqual(label, `Alice Liddell, online, 1 unread message, last message: ${FIRST_MESSAGE}`, "the row's accessible name");
    const own = bob.viewportSize();
    try {
      for (const viewport of [PHONE, { width: 320, height: 640 }, DESKTOP, { width: 1440, height: 900 }]) {
        await bob.setViewportSize(viewport);
        await settled(bob);
        await assertRowShowsAll(bob, "alice", "bob's row for alice");
      }
    } finally {
      if (own) await bob.setViewportSize(own);
    }
    await checkScreen(bob, "conversations with an unread message");
  });

  await live("the unread badge counts up", async () => {
    await send(alice, "Are you around?");
    await send(alice, "Line one\nhttps://example.com/path?x=1 and <b>not bold</b> <img src=x onerror=alert(1)>");
    await until(async () => (await badgeText(bob, "alice")) === "3", "bob's badge shows 3");
    await until(async () => (await bob.title()).startsWith("(3)"), "bob's title shows (3)");
  });

  await live("Shift+Enter breaks the line instead of sending", async () => {
    const box = alice.locator(".composer textarea");
    await box.click();
    await box.type("first line");
    await box.press("Shift+Enter");
    await box.type("second line");
    assertEqual(await box.inputValue(), "first line\nsecond line", "composer text");
    await box.press("Enter");
    await until(async () => (await badgeText(bob, "alice")) === "4", "bob's badge shows 4");
    const texts = await messageTexts(alice);
    assert(texts.includes("first line\nsecond line"), `multi-line message shown as sent: ${JSON.stringify(texts)}`);
  });

  await live("opening the conversation clears the badge and alice sees her messages read", async () => {
    await row(bob, "alice").click();
    await bob.waitForURL(`**/chat/${roomAB}`);
    await until(async () => (await bob.locator(".msg").count()) === 4, "bob sees 4 messages");
    await until(async () => (await badgeText(bob, "alice")) === "0", "bob's badge cleared");
    await until(async () => (await bob.title()) === "Let's Chat", "bob's title without count");
    await until(
      async () => (await alice.locator('.msg.is-own[data-state="read"]').count()) === 4,
      "alice's 4 messages show as read",
    );
  });

  await live("message text is rendered as text, with only http(s) links clickable", async () => {
    const m = bob.locator(".msg", { hasText: "Line one" });
    assertEqual(await m.locator("b").count(), 0, "no <b> element from the body");
    assertEqual(await m.locator("img").count(), 0, "no <img> element from the body");
    const text = await m.locator(".msg__text").textContent();
    assert(text.includes("<b>not bold</b>") && text.includes("<img src=x onerror=alert(1)>"), `markup shown literally: ${text}`);
    const link = m.locator("a");
    assertEqual(await link.count(), 1, "one link");
    assertEqual(await link.getAttribute("href"), "https://example.com/path?x=1", "link href");
    assertEqual(await link.getAttribute("target"), "_blank", "link target");
    assert((await link.getAttribute("rel")).includes("noopener"), "rel noopener");
  });

  await live("typing shows on the other side, and bob's reply arrives live", async () => {
    const box = bob.locator(".composer textarea");
    await box.click();
    await box.type("Yes, ", { delay: 20 });
    await alice.locator(".conv__status", { hasText: "typing…" }).waitFor();
    await alice.locator(".typing.is-visible", { hasText: "Bob Marley is typing…" }).waitFor();
    await box.type("I'm here!");
    await box.press("Enter");
    await alice.locator(".msg.is-peer", { hasText: "Yes, I'm here!" }).waitFor();
    await alice.locator(".typing.is-visible").waitFor({ state: "detached" }).catch(() => undefined);
    await until(async () => !(await alice.locator(".typing.is-visible").count()), "typing indicator cleared by the message");
    await until(async () => (await bob.locator('.msg.is-own[data-state="read"]').count()) === 1, "bob's reply read by alice");
    await checkScreen(alice, "a conversation");
  });

  await steps.run("reload keeps the session and the history", async () => {
    await bob.reload();
    await bob.waitForURL(`**/chat/${roomAB}`);
    await until(async () => (await bob.locator(".msg").count()) === (hasWs ? 5 : 0), "history is back after reload");
    await row(bob, "alice").waitFor();
    if (hasWs) {
      const texts = await messageTexts(bob);
      assertEqual(texts[0], FIRST_MESSAGE, "first message");
      assertEqual(texts[texts.length - 1], "Yes, I'm here!", "last message");
      // The read receipt comes back with the socket's `ready` (the peer's read marker).
      await until(
        async () => (await bob.locator('.msg.is-own[data-state="read"]').count()) === 1,
        "bob's reply still shows as read after the reload",
      );
    }
  });

  await live("the server restarts mid-conversation: both reconnect and catch up with nothing lost or doubled", async () => {
    serverDown = true;
    await server.stop();
    await alice.locator(".conn-banner.is-visible").waitFor({ timeout: 15_000 });
    await bob.locator(".conn-banner.is-visible").waitFor({ timeout: 15_000 });
    // Typed while offline: queued under their client_msg_id, shown as sending.
    await send(alice, "Sent while the server was down (1)");
    await send(alice, "Sent while the server was down (2)");
    await until(async () => (await alice.locator('.msg.is-own[data-state="sending"]').count()) === 2, "two queued messages");
    await shot(alice, "reconnecting-desktop");
    await checkScreen(alice, "reconnecting, with messages waiting to be sent");
    await server.start();
    serverDown = false;
    await alice.locator(".conn-banner.is-visible").waitFor({ state: "detached", timeout: 20_000 }).catch(() => undefined);
    await until(async () => !(await alice.locator(".conn-banner.is-visible").count()), "alice's banner gone", 20_000);
    await until(async () => !(await bob.locator(".conn-banner.is-visible").count()), "bob's banner gone", 20_000);
    await until(async () => (await alice.locator('.msg.is-own[data-state="sending"]').count()) === 0, "queued messages acknowledged", 15_000);
    await until(async () => (await bob.locator(".msg").count()) === 7, "bob has all 7 messages", 15_000);
    // And live traffic flows again both ways.
    await send(bob, "Back online 🎉");
    await alice.locator(".msg.is-peer", { hasText: "Back online" }).waitFor();
    await send(alice, "Same here");
    await bob.locator(".msg.is-peer", { hasText: "Same here" }).waitFor();

    const token = await tokenOf(alice);
    const history = await rest("GET", `/api/rooms/${roomAB}/messages?limit=200`, { token });
    assertEqual(history.status, 200, "history status");
    const bodies = history.json.messages.map((m) => m.body);
    assertEqual(bodies.length, 9, "9 messages stored");
    assertEqual(new Set(bodies).size, 9, "no message stored twice");
    const seqs = history.json.messages.map((m) => m.seq);
    assertEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9], "seqs without gaps");
    for (const page of [alice, bob]) {
      const texts = await messageTexts(page);
      assertEqual(texts, bodies, "the screen shows each stored message once, in order");
      const ids = await page.locator(".msg").evaluateAll((els) => els.map((e) => e.getAttribute("data-client-msg-id")));
      assertEqual(new Set(ids).size, ids.length, "no client_msg_id twice on screen");
    }
  });

  await live("a desktop notification for a message in a room that is not in view, none for the open one", async () => {
    const notes = () => alice.evaluate(() => window.__notifications.map((n) => `${n.title}: ${n.body}`));
    const before = (await notes()).length;
    assertEqual(before, 0, "no notification while the conversation was open");
    await alice.goto("/");
    await row(alice, "bob").waitFor();
    await send(bob, "Ping for a notification");
    await until(async () => (await notes()).includes("Bob Marley: Ping for a notification"), "alice got a notification");
    await until(async () => (await badgeText(alice, "bob")) === "1", "alice's badge shows 1");
    await row(alice, "bob").click();
    await until(async () => (await badgeText(alice, "bob")) === "0", "alice's badge cleared");
  });

  await live("offline: the notice shows as soon as the browser is offline, and coming back online reconnects", async () => {
    await alice.locator(".msg", { hasText: "Ping for a notification" }).waitFor();
    const before = socketsOf(alice);
    browserOffline = true;
    try {
      await alice.context().setOffline(true);
      // The browser says offline at once; the socket may not notice for a long while.
      await alice.locator(".conn-banner.is-visible", { hasText: "You're offline" }).waitFor({ timeout: 1000 });
      await checkScreen(alice, "offline");
      await alice.context().setOffline(false);
      await until(async () => !(await alice.locator(".conn-banner.is-visible").count()), "the offline notice is gone");
      await until(async () => socketsOf(alice).opened > before.opened, "a fresh connection after coming back online");
    } finally {
      await alice.context().setOffline(false);
      browserOffline = false;
    }
    await send(bob, "Are you back?");
    await alice.locator(".msg.is-peer", { hasText: "Are you back?" }).waitFor();
    await send(alice, "Yes, my train went through a tunnel 🚆");
    await bob.locator(".msg.is-peer", { hasText: "my train went through a tunnel" }).waitFor();
  });

  const TUNNEL = "Yes, my train went through a tunnel 🚆";
  const GLAD = "Glad you made it! 🎉";
  const METOO = "Me too 😄";

  await live("reply: bob answers from the message's menu; the quote shows live on both sides and leads to the original", async () => {
    const menu = await openActions(bob, bubbleOf(bob, TUNNEL));
    await checkScreen(bob, "a message's actions menu");
    await menu.getByRole("button", { name: "Reply" }).click();
    await menu.waitFor({ state: "detached" });
    const bar = bob.locator(".composer__reply");
    await bar.getByText("Replying to Alice Liddell").waitFor();
    await bar.getByText(TUNNEL).waitFor();
    // The cursor is in the box: bob just types.
    assertEqual(await bob.evaluate(() => document.activeElement?.closest(".composer") !== null), true, "the composer has the focus");
    // × cancels, Reply again, then send.
    await bar.getByRole("button", { name: "Cancel reply" }).click();
    await bar.waitFor({ state: "detached" });
    await (await openActions(bob, bubbleOf(bob, TUNNEL))).getByRole("button", { name: "Reply" }).click();
    await checkScreen(bob, "writing a reply");
    await shot(bob, "reply-desktop");
    await bob.keyboard.type(GLAD);
    await bob.keyboard.press("Enter");
    await bar.waitFor({ state: "detached" });
    const mine = bubbleOf(bob, GLAD);
    await mine.locator('.msg__quote:has-text("Alice Liddell")').waitFor();
    await mine.locator(".msg__quote", { hasText: TUNNEL }).waitFor();
    const theirs = bubbleOf(alice, GLAD);
    await theirs.locator(".msg__quote", { hasText: TUNNEL }).waitFor();
    assertEqual(await theirs.locator(".msg__quote-name").textContent(), "You", "alice sees her own message quoted as “You”");
    // The quote shows the original, lit up for a moment.
    await theirs.locator(".msg__quote").click();
    await bubbleOf(alice, TUNNEL).and(alice.locator(".msg.is-highlighted")).waitFor();

    // alice answers bob's reply the same way.
    await (await openActions(alice, theirs)).getByRole("button", { name: "Reply" }).click();
    await alice.keyboard.type(METOO);
    await alice.keyboard.press("Enter");
    await bubbleOf(bob, METOO).locator(".msg__quote", { hasText: GLAD }).waitFor();
    assertEqual(await bubbleOf(bob, METOO).locator(".msg__quote-name").textContent(), "You", "bob's message quoted as “You”");
  });

  await live("react: the picker adds a reaction, chips toggle ours, both see them live with who reacted", async () => {
    const bobsView = bubbleOf(bob, TUNNEL);
    const alicesView = bubbleOf(alice, TUNNEL);
    const bubbleBox = () => alicesView.locator(".msg__bubble").boundingBox();
    const msgBox = () => alicesView.boundingBox();
    const [before, msgBefore] = [await bubbleBox(), await msgBox()];
    const menu = await openActions(bob, bobsView);
    await menu.getByRole("button", { name: "React with ❤️" }).click();
    await menu.waitFor({ state: "detached" });
    await until(async () => JSON.stringify(await chipsOf(bobsView)) === JSON.stringify(["❤️1*"]), "bob's ❤️ chip, pressed");
    await until(async () => JSON.stringify(await chipsOf(alicesView)) === JSON.stringify(["❤️1"]), "alice sees bob's ❤️ live");
    assertEqual(await alicesView.locator(".reaction").getAttribute("title"), "Bob Marley", "who reacted");
    // A reaction adds its line of chips under the bubble and moves nothing else.
    const [after, msgAfter] = [await bubbleBox(), await msgBox()];
    assertEqual([after.width, after.height], [before.width, before.height], "the bubble keeps its size");
    const chipsHeight = (await alicesView.locator(".msg__reactions").boundingBox()).height;
    assert(msgAfter.height - msgBefore.height <= chipsHeight + 4, `the message grew by its chips' line only (${msgBefore.height} → ${msgAfter.height}, chips ${chipsHeight})`);

    await alicesView.locator(".reaction").click();
    await until(async () => JSON.stringify(await chipsOf(alicesView)) === JSON.stringify(["❤️2*"]), "alice's chip shows 2, pressed");
    await until(async () => JSON.stringify(await chipsOf(bobsView)) === JSON.stringify(["❤️2*"]), "bob sees 2");
    assertEqual(await bobsView.locator(".reaction").getAttribute("title"), "You, Alice Liddell", "who reacted, in order");
    // bob takes his back with the chip, then adds 👍 with the picker (where ❤️ shows as his no more).
    await bobsView.locator(".reaction").click();
    await until(async () => JSON.stringify(await chipsOf(bobsView)) === JSON.stringify(["❤️1"]), "bob's ❤️ taken back");
    const again = await openActions(bob, bobsView);
    assertEqual(await again.getByRole("button", { name: "React with ❤️" }).getAttribute("aria-pressed"), "false", "❤️ not pressed for bob");
    await again.getByRole("button", { name: "React with 👍" }).click();
    await until(async () => JSON.stringify(await chipsOf(alicesView)) === JSON.stringify(["❤️1*", "👍1"]), "alice sees ❤️ (hers) and 👍");
    // The picker from the keyboard: Escape closes it and gives the focus back to the button.
    await bobsView.locator(".msg__bubble").hover();
    await bobsView.locator(".msg__more").focus();
    await bob.keyboard.press("Enter");
    const kb = bob.getByRole("dialog", { name: "Message actions" });
    await kb.waitFor();
    await until(async () => (await bob.evaluate(() => document.activeElement?.getAttribute("aria-label"))) === "React with 👍", "the first choice has the focus");
    await bob.keyboard.press("ArrowRight");
    assertEqual(await bob.evaluate(() => document.activeElement?.getAttribute("aria-label")), "React with ❤️", "arrow keys move through the choices");
    await bob.keyboard.press("Escape");
    await kb.waitFor({ state: "detached" });
    assertEqual(await bob.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Message actions", "focus back on the button");
  });

  await live("edit: Up in an empty box edits alice's last message in place; Escape cancels, Enter saves; bob sees it live", async () => {
    const EDITED = "Me too 😄 See you on Saturday!";
    const box = alice.locator(".composer textarea");
    await box.click();
    await box.press("ArrowUp");
    // Its text is the message's; the quote stays above it.
    await alice.locator('.msg.is-editing textarea[aria-label="Edit message"]').waitFor();
    assertEqual(await alice.locator(".msg.is-editing textarea").inputValue(), METOO, "the edit box holds the message");
    await checkScreen(alice, "editing a message in place");
    await shot(alice, "edit-desktop");
    await alice.keyboard.press("Escape");
    await alice.locator(".msg.is-editing").waitFor({ state: "detached" });
    assertEqual(await bubbleOf(alice, METOO).locator(".msg__edited").count(), 0, "Escape changed nothing");

    await box.click();
    await box.press("ArrowUp");
    const ed = alice.locator(".msg.is-editing textarea");
    await ed.waitFor();
    await ed.press("End");
    await ed.press("Shift+Enter");
    await ed.type("See you on Saturday!");
    assertEqual(await ed.inputValue(), `${METOO}\nSee you on Saturday!`, "Shift+Enter breaks the line");
    await ed.fill(EDITED);
    await ed.press("Enter");
    await alice.locator(".msg.is-editing").waitFor({ state: "detached" });
    await bubbleOf(alice, EDITED).locator(".msg__edited").waitFor();
    const seen = bubbleOf(bob, EDITED);
    await seen.locator(".msg__edited").waitFor();
    assert((await seen.locator(".msg__edited").getAttribute("title")).startsWith("Edited "), "the edit time as a tooltip");
    // bob's list shows the new text of the last message.
    await row(bob, "alice").locator(".contact-row__preview", { hasText: EDITED }).waitFor();

    // The server refuses (past the edit window): its reason shows under the box.
    const refuse = (route) =>
      route.request().method() === "PATCH"
        ? route.fulfill({
            status: 403,
            contentType: "application/json",
            body: JSON.stringify({ error: { code: "forbidden", message: "messages can only be edited within 15m of sending" } }),
          })
        : route.fallback();
    await alice.route("**/api/rooms/*/messages/*", refuse);
    try {
      await box.click();
      await box.press("ArrowUp");
      await ed.fill("Too late?");
      await ed.press("Enter");
      await alice.locator(".msg-edit__error", { hasText: "Messages can only be edited within 15m of sending" }).waitFor();
      await alice.keyboard.press("Escape");
      await alice.locator(".msg.is-editing").waitFor({ state: "detached" });
    } finally {
      await alice.unroute("**/api/rooms/*/messages/*", refuse);
    }
    await bubbleOf(alice, EDITED).waitFor();
  });

  await live("delete: a confirmation that keeps the focus (Escape cancels), then a placeholder in place, live on both sides", async () => {
    const target = bubbleOf(bob, GLAD);
    const seq = await target.getAttribute("data-seq");
    await (await openActions(bob, target)).getByRole("button", { name: "Delete" }).click();
    const dialog = bob.getByRole("alertdialog", { name: "Delete this message?" });
    await dialog.waitFor();
    const focused = () => bob.evaluate(() => document.activeElement?.textContent?.trim() ?? "");
    assertEqual(await focused(), "Cancel", "Cancel has the focus");
    await shot(bob, "delete-confirm-desktop");
    for (const key of ["Tab", "Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab"]) {
      await bob.keyboard.press(key);
      assert(await dialog.evaluate((d) => d.contains(document.activeElement)), `focus stays in the dialog after ${key}`);
    }
    await checkScreen(bob, "deleting a message");
    await bob.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await bubbleOf(bob, GLAD).waitFor();
    assertEqual(await bob.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Message actions", "focus back on the message's button");

    await (await openActions(bob, target)).getByRole("button", { name: "Delete" }).click();
    await dialog.getByRole("button", { name: "Delete" }).click();
    await dialog.waitFor({ state: "detached" });
    for (const page of [bob, alice]) {
      const tomb = page.locator(`.msg.is-deleted[data-seq="${seq}"]`);
      await tomb.locator(".msg__deleted", { hasText: "message deleted" }).waitFor();
      assertEqual(await tomb.locator(".msg__more").count(), 0, "no actions on a deleted message");
      assertEqual(await page.locator(".msg__text", { hasText: GLAD }).count(), 0, "the text is gone");
      // The reply to it says so.
      await page.locator(".msg__quote.is-gone", { hasText: "original message deleted" }).waitFor();
    }
    // The last message deleted: the list says so.
    await send(bob, "Wrong chat, sorry");
    await bubbleOf(alice, "Wrong chat, sorry").waitFor();
    await (await openActions(bob, bubbleOf(bob, "Wrong chat, sorry"))).getByRole("button", { name: "Delete" }).click();
    await dialog.getByRole("button", { name: "Delete" }).click();
    await row(alice, "bob").locator(".contact-row__preview", { hasText: "message deleted" }).waitFor();
    await row(bob, "alice").locator(".contact-row__preview", { hasText: "message deleted" }).waitFor();
  });

  await live("after a reload both see the replies, the edit, the deletions and the reactions as they were", async () => {
    for (const page of [alice, bob]) {
      await page.reload();
      await bubbleOf(page, TUNNEL).waitFor();
    }
    await until(async () => JSON.stringify(await chipsOf(bubbleOf(alice, TUNNEL))) === JSON.stringify(["❤️1*", "👍1"]), "alice's chips");
    assertEqual(await chipsOf(bubbleOf(bob, TUNNEL)), ["❤️1", "👍1*"], "bob's chips");
    for (const page of [alice, bob]) {
      const edited = bubbleOf(page, "See you on Saturday!");
      await edited.locator(".msg__edited").waitFor();
      await edited.locator(".msg__quote.is-gone", { hasText: "original message deleted" }).waitFor();
      assertEqual(await page.locator(".msg.is-deleted").count(), 2, "two placeholders");
      assertEqual(await page.locator(".msg__text", { hasText: GLAD }).count(), 0, "the deleted text stays gone");
    }
    await row(alice, "bob").locator(".contact-row__preview", { hasText: "message deleted" }).waitFor();
    await checkScreen(alice, "a conversation with replies, an edit, deletions and reactions");
  });

  // ---- attachments: photos and files -------------------------------------------------------
  const DROPPED = "Lisbon sunset 🌅 from the Miradouro da Senhora do Monte.jpg";
  const PDF_NAME = "Lisbon–Porto road trip itinerary with hotels and train tickets 🚆 final v3 2026.pdf";
  const pdfBytes = pdf("Lisbon - Porto road trip, July 2026");
  const sendButton = (page) => page.locator(".composer__send");

  await live("attachments: alice drops a photo on the conversation; the tray shows its upload progress reaching done; she sends it", async () => {
    // A slow uplink, so the progress can be seen.
    const cdp = await alice.context().newCDPSession(alice);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 384 * 1024 });
    try {
      const size = await dragPhotoOver(alice, DROPPED, 1600, 1200);
      assert(size > 300_000 && size < MAX_UPLOAD_BYTES, `a photo's size: ${size} bytes`);
      await alice.locator(".dropzone", { hasText: "Drop files to send to Bob Marley" }).waitFor();
      await shot(alice, "attachments-dropzone-desktop");
      await alice.evaluate(() => window.__drop());
      await alice.locator(".dropzone").waitFor({ state: "detached" });
      const item = alice.locator(".tray-item", { hasText: "Lisbon sunset" });
      await item.locator('[role="progressbar"]').waitFor();
      assert(await sendButton(alice).isDisabled(), "Send waits for the upload");
      await alice.locator('.tray-item[data-status="done"]', { hasText: "Lisbon sunset" }).waitFor({ timeout: 30_000 });
      const seen = await alice.evaluate(() => window.__progress);
      assert(seen.some((v) => v > 0 && v < 100), `the bar moved through the upload: ${JSON.stringify(seen)}`);
      assert(seen.every((v, i) => i === 0 || v >= seen[i - 1]), `the bar only moves forward: ${JSON.stringify(seen)}`);
    } finally {
      await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
      await cdp.detach();
    }
    assert(!(await sendButton(alice).isDisabled()), "Send is enabled once the upload is done, with no text");
    await checkScreen(alice, "a photo attached, ready to send");
    await alice.locator(".composer textarea").press("Enter");
    await alice.locator(".tray").waitFor({ state: "detached" });
    const mine = alice.locator(".msg.is-own").last();
    await mine.locator(".media--single img").waitFor();
    await until(async () => ["sent", "read"].includes(await mine.getAttribute("data-state")), "alice's photo acknowledged");
    assertEqual(await mine.locator(".msg__text").count(), 0, "no empty text under the photo");
  });

  await live("bob sees the photo live in a box reserved from its size, opens it full size and closes it with Escape", async () => {
    const theirs = bob.locator(".msg.is-peer").last();
    const box = theirs.locator(".media--single");
    await box.waitFor();
    // 1600 × 1200 fits 320 × 240, known from the message before the thumbnail loads.
    assertEqual(await box.getAttribute("data-box"), "320x240", "the box from the photo's size");
    assertEqual(await drawnSize(box), [320, 240], "the box is drawn at that size at once");
    await until(() => box.locator("img").evaluate((i) => i.complete && i.naturalWidth > 0), "the thumbnail loaded");
    assertEqual(await drawnSize(box), [320, 240], "the same size once the thumbnail is there");
    assertEqual(await box.locator("img").evaluate((i) => [i.naturalWidth, i.naturalHeight]), [400, 300], "the thumbnail, 400 px on its long side");
    await until(() => atBottom(bob), "bob's view stays at the bottom");
    // The lists say what came.
    await row(bob, "alice").locator(".contact-row__preview", { hasText: "🖼 Photo" }).waitFor();
    await row(alice, "bob").locator(".contact-row__preview", { hasText: "You: 🖼 Photo" }).waitFor();
    assert((await rowLook(bob, "alice")).label.endsWith("last message: 🖼 Photo"), "the row's accessible name says Photo");

    const tile = box.locator(".media__tile");
    await tile.click();
    const lightbox = bob.getByRole("dialog", { name: `Photo: ${DROPPED}` });
    await lightbox.waitFor();
    const full = lightbox.locator("img.lightbox__img");
    assert(!(await full.getAttribute("src")).includes("/thumbnail"), "the lightbox shows the photo itself, not its thumbnail");
    await until(() => full.evaluate((i) => i.complete && i.naturalWidth === 1600), "the full-size photo loaded");
    const focused = () => bob.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? "");
    assertEqual(await focused(), "Close photo", "the close button has the focus");
    for (const key of ["Tab", "Tab", "Tab", "Shift+Tab"]) {
      await bob.keyboard.press(key);
      assert(await lightbox.evaluate((d) => d.contains(document.activeElement)), `focus stays in the lightbox after ${key}`);
    }
    await lightbox.getByRole("link", { name: `Download ${DROPPED}` }).waitFor();
    await shot(bob, "attachments-lightbox-desktop");
    await checkScreen(bob, "a photo full size");
    await bob.keyboard.press("Escape");
    await lightbox.waitFor({ state: "detached" });
    assertEqual(await focused(), `Open photo ${DROPPED}`, "the focus is back on the photo");
    // A click beside the photo closes it too.
    await tile.click();
    await lightbox.waitFor();
    await bob.mouse.click(30, 420);
    await lightbox.waitFor({ state: "detached" });
  });

  await live("alice attaches a PDF with the file picker; bob downloads it and gets the very bytes sent", async () => {
    await alice.locator('.composer input[type="file"]').setInputFiles({ name: PDF_NAME, mimeType: "application/pdf", buffer: pdfBytes });
    await alice.locator('.tray-item[data-status="done"]').waitFor();
    await send(alice, "Here is the plan for the trip 👇");
    const card = bob.locator(".msg.is-peer").last().locator(".file-card");
    await card.waitFor();
    const link = card.getByRole("link", { name: `Download ${PDF_NAME}, 157 KB` });
    assertEqual(await link.getAttribute("download"), PDF_NAME, "the link downloads under the file's name");
    assertEqual(await card.locator(".file-icon__label").textContent(), "PDF", "a PDF's icon");
    await assertCutInTheMiddle(card.locator(".file-name__shown"), "Lisbon–Port", "2026.pdf");
    await bob.locator(".msg.is-peer").last().locator(".msg__caption .msg__text", { hasText: "Here is the plan" }).waitFor();
    const [download] = await Promise.all([bob.waitForEvent("download"), card.click()]);
    assertEqual(download.suggestedFilename(), PDF_NAME, "the downloaded file's name");
    const got = readFileSync(await download.path());
    assertEqual(got.length, pdfBytes.length, "downloaded size");
    assert(got.equals(pdfBytes), "the downloaded bytes are the bytes sent");
  });

  await live("a failed upload shows the server's reason with a retry; cancelling; at most ten files, said so; ten photos in a grid", async () => {
    const input = alice.locator('.composer input[type="file"]');
    // Over the server's limit: its 413, in words.
    await input.setInputFiles({ name: "Family videos 2025 (full backup).zip", mimeType: "application/zip", buffer: Buffer.alloc(MAX_UPLOAD_BYTES + 100_000, 7) });
    const tooLarge = alice.locator(".tray-item", { hasText: "Family videos" });
    await tooLarge.locator(".tray-item__error", { hasText: "Too large: the limit is 3 MB" }).waitFor();
    assert(await sendButton(alice).isDisabled(), "Send waits while a file failed");
    // The quota (answered by the test): retry once it has passed.
    let refuse = true;
    const quota = (route) =>
      refuse
        ? route.fulfill({
            status: 429,
            contentType: "application/json",
            headers: { "Retry-After": "30" },
            body: JSON.stringify({ error: { code: "rate_limited", message: "too many requests; retry in 30 s" } }),
          })
        : route.fallback();
    await alice.route("**/api/uploads", quota);
    const map = alice.locator(".tray-item", { hasText: "نقشه سفر" });
    try {
      await input.setInputFiles({ name: "نقشه سفر لیسبون.png", mimeType: "image/png", buffer: snapshot(600, [60, 140, 200]) });
      await map.locator(".tray-item__error", { hasText: "Upload limit reached: try again in 30 s" }).waitFor();
      await checkScreen(alice, "uploads that failed, with their reasons and a retry");
      refuse = false;
      await map.getByRole("button", { name: /^Retry uploading/u }).click();
      await alice.locator('.tray-item[data-status="done"]', { hasText: "نقشه سفر" }).waitFor();
    } finally {
      await alice.unroute("**/api/uploads", quota);
    }
    await tooLarge.getByRole("button", { name: /^Remove Family videos/u }).click();
    await tooLarge.waitFor({ state: "detached" });
    assert(!(await sendButton(alice).isDisabled()), "Send is enabled again");

    // An upload in progress can be cancelled: it leaves the tray.
    const hold = holdUploads();
    await alice.route("**/api/uploads", hold.handler);
    try {
      await input.setInputFiles({ name: "slow.mov", mimeType: "video/quicktime", buffer: Buffer.alloc(200_000, 1) });
      const slow = alice.locator(".tray-item", { hasText: "slow.mov" });
      await slow.locator('[role="progressbar"]').waitFor();
      await until(() => hold.count() === 1, "the upload reached the server");
      await slow.getByRole("button", { name: "Cancel uploading slow.mov" }).click();
      await slow.waitFor({ state: "detached" });
    } finally {
      hold.release();
      await alice.unroute("**/api/uploads", hold.handler);
    }

    // Ten at most: of ten more photos, nine are taken, and the tray says why not the last.
    const colours = [[230, 120, 80], [90, 170, 120], [80, 120, 220], [220, 190, 70], [170, 90, 200], [60, 180, 190], [240, 140, 170], [120, 120, 130], [200, 80, 80], [100, 200, 90]];
    await input.setInputFiles(colours.map((c, i) => ({ name: `Porto day ${i + 1} 📸.png`, mimeType: "image/png", buffer: snapshot(320, c) })));
    await alice.locator(".tray__notice", { hasText: "You can send up to 10 files in one message: 1 file was not added." }).waitFor();
    await until(async () => (await alice.locator(".tray-item").count()) === 10, "ten files in the tray");
    await until(async () => (await alice.locator('.tray-item[data-status="done"]').count()) === 10, "all ten uploaded", 20_000);
    await alice.locator(".composer textarea").press("Enter");
    const grid = bob.locator(".msg.is-peer").last().locator(".media--grid");
    await grid.waitFor();
    assertEqual(await grid.locator(".media__tile").count(), 10, "bob sees the ten photos");
    // Three columns, four rows: the first photo spans the first row.
    const [w, h] = await drawnSize(grid);
    assert(w === 320 && Math.abs(h - (320 * 4) / 3) <= 1, `the grid's box: ${w} × ${h}`);
    await row(bob, "alice").locator(".contact-row__preview", { hasText: "🖼 10 photos" }).waitFor();
    await until(() => atBottom(bob), "bob's view stays at the bottom");
  });

  await live("a pasted screenshot is attached; deleting its message takes the photo away on both sides", async () => {
    await pasteScreenshot(alice);
    await alice.locator('.tray-item[data-status="done"]', { hasText: "Pasted image" }).waitFor();
    await alice.locator(".composer textarea").press("Enter");
    const theirs = bob.locator(".msg.is-peer").last();
    await theirs.locator(".media--single img").waitFor();
    const seq = await theirs.getAttribute("data-seq");
    const thumb = await theirs.locator(".media--single img").getAttribute("src");
    assertEqual((await fetch(server.origin + thumb)).status, 200, "the photo's link works while the message lives");
    const mine = alice.locator(`.msg.is-own[data-seq="${seq}"]`);
    await (await openActions(alice, mine)).getByRole("button", { name: "Delete" }).click();
    await alice.getByRole("alertdialog", { name: "Delete this message?" }).getByRole("button", { name: "Delete" }).click();
    for (const page of [alice, bob]) {
      const tomb = page.locator(`.msg.is-deleted[data-seq="${seq}"]`);
      await tomb.locator(".msg__deleted").waitFor();
      assertEqual(await tomb.locator(".media, .file-card").count(), 0, "no photo on a deleted message");
    }
    assertEqual((await fetch(server.origin + thumb)).status, 403, "the deleted photo's link no longer works");
  });

  await live("realistic attachments: a tall portrait, a wide panorama, grids, RTL and emoji names, at phone and desktop sizes", async () => {
    const bobToken = await rest("POST", "/api/auth/login", { body: { username: "bob", password: PASSWORD } }).then((r) => r.json.token);
    const people = {};
    for (const [username, display_name] of [["sofia", "Sofía Álvarez 📸"], ["tomas", "Tomás Oliveira"], ["yusuf", "يوسف الحداد"]]) {
      const reg = await rest("POST", "/api/auth/register", { body: { username, password: PASSWORD, display_name } });
      assertEqual(reg.status, 201, `${username} registered`);
      const c = await rest("POST", "/api/contacts", { token: reg.json.token, body: { username: "bob" } });
      await rest("POST", "/api/contacts", { token: bobToken, body: { username } });
      people[username] = { token: reg.json.token, room: c.json.room_id };
    }
    let n = 0;
    const say = async (who, body, files = []) => {
      const token = who === "bob" ? bobToken : people[who].token;
      const room = people[who === "bob" ? "sofia" : who].room;
      const ids = [];
      for (const [name, bytes, type] of files) ids.push((await restUpload(server.origin, token, name, bytes, type)).id);
      const r = await rest("POST", `/api/rooms/${room}/messages`, { token, body: { client_msg_id: `att-${n++}`, body, attachments: ids } });
      assertEqual(r.status, 201, `a message with ${ids.length} attachments`);
      return r.json;
    };
    const PANORAMA = panorama();
    const PORTRAIT = portrait();
    await say("tomas", "", [
      ["Ribeira 1.png", snapshot(700, [220, 120, 70]), "image/png"],
      ["Ribeira 2.png", snapshot(700, [70, 140, 200]), "image/png"],
      ["Ribeira 3.png", snapshot(700, [240, 200, 90]), "image/png"],
    ]);
    await say("yusuf", "", [["جدول الرحلة النهائي - لشبونة وبورتو 2026.xlsx", Buffer.from("PK\u0003\u0004 spreadsheet bytes ".repeat(400)), "application/octet-stream"]]);
    await say("sofia", "¡Hola Bob! Fotos del viaje 😍");
    await say("sofia", "", [["Cascata do Arado, Gerês — portrait.png", PORTRAIT, "image/png"]]);
    await say("bob", "Wow 🤩 send the panorama too!");
    await say("sofia", "תראה את השקיעה מעל הדואורו 🌅", [["Douro valley panorama 🏞️ 2026-07-15.png", PANORAMA, "image/png"]]);
    await say("bob", "Here are mine, and the tickets 🎟️", [
      ["Comboio para Pinhão.png", snapshot(800, [120, 80, 200]), "image/png"],
      ["Quinta do Bomfim.png", snapshot(800, [60, 170, 110]), "image/png"],
      ["CP tickets — Porto São Bento → Pinhão (2 adults, return) 15-07-2026.pdf", pdf("CP tickets", 40_000), "application/pdf"],
    ]);
    await say("sofia", "", [["Douro valley panorama 🏞️ 2026-07-15 (edited).png", PANORAMA, "image/png"]]);

    for (const [suffix, viewport, colorScheme] of [["desktop", DESKTOP, "light"], ["phone", TALL_PHONE, "light"], ["dark-desktop", DESKTOP, "dark"]]) {
      const { page, context } = await newPage(`bob-attachments-${suffix}`, { viewport, colorScheme });
      await login(page, "bob");
      await row(page, "sofia").locator(".contact-row__preview", { hasText: "🖼 Photo" }).waitFor();
      await row(page, "tomas").locator(".contact-row__preview", { hasText: "🖼 3 photos" }).waitFor();
      await row(page, "yusuf").locator(".contact-row__preview", { hasText: "📎 جدول الرحلة" }).waitFor();
      if (suffix === "phone") {
        await shot(page, "attachments-contacts-phone");
        await checkScreen(page, "conversations whose last messages are photos and files");
      }
      await row(page, "sofia").click();
      const last = page.locator(".msg").last();
      await last.locator(".media--single").waitFor();
      // The conversation opens at its bottom and stays there while the photos load.
      await until(() => photosLoaded(page), "every photo loaded");
      await until(() => atBottom(page), `the conversation is at its bottom once the photos loaded (${suffix})`);
      // A panorama is held at a readable height, a portrait at a readable width, both cropped.
      assertEqual(await last.locator(".media--single").getAttribute("data-box"), "320x96", "the panorama's box");
      const tall = page.locator(".media--single", { has: page.getByRole("button", { name: /Cascata do Arado/u }) });
      assertEqual(await tall.getAttribute("data-box"), "162x360", "the portrait's box");
      await shot(page, `attachments-conversation-${suffix}`);
      await checkScreen(page, `a conversation with photos and files (${suffix})`);
      if (colorScheme === "dark") {
        await context.close();
        continue;
      }
      // The portrait full size.
      await tall.locator(".media__tile").click();
      const lightbox = page.getByRole("dialog", { name: /Cascata do Arado/u });
      await lightbox.waitFor();
      await until(() => lightbox.locator("img").evaluate((i) => i.complete && i.naturalWidth === 1080), "the portrait loaded");
      if (suffix === "phone") await shot(page, "attachments-lightbox-phone");
      await page.keyboard.press("Escape");
      await lightbox.waitFor({ state: "detached" });
      await context.close();
    }

    // The tray on a phone and a desktop: one photo uploaded, one file on its way, one too large.
    for (const [suffix, viewport] of [["phone", TALL_PHONE], ["desktop", DESKTOP]]) {
      const { page, context } = await newPage(`sofia-tray-${suffix}`, { viewport });
      await login(page, "sofia");
      await row(page, "bob").click();
      await page.locator(".msg").last().waitFor();
      const input = page.locator('.composer input[type="file"]');
      await input.setInputFiles({ name: "Pastéis de nata 🥮.png", mimeType: "image/png", buffer: snapshot(500, [230, 180, 90]) });
      await page.locator('.tray-item[data-status="done"]').waitFor();
      await input.setInputFiles({ name: "Raw footage — Douro boat trip (4K, uncut).mov", mimeType: "video/quicktime", buffer: Buffer.alloc(MAX_UPLOAD_BYTES + 1000, 3) });
      await page.locator(".tray-item__error", { hasText: "Too large" }).waitFor();
      const hold = holdUploads();
      await page.route("**/api/uploads", hold.handler);
      try {
        await input.setInputFiles({ name: "Relatório de despesas da viagem — agosto 2026 (versão final).pdf", mimeType: "application/pdf", buffer: pdf("Despesas", 20_000) });
        await page.locator('.tray-item[data-status="uploading"]').waitFor();
        await page.locator(".composer textarea").fill("Olha só 👀");
        await assertCutInTheMiddle(page.locator(".tray-item", { hasText: "Relatório" }).locator(".file-name__shown"), "Relat", ").pdf");
        await shot(page, `attachments-tray-${suffix}`);
        await checkScreen(page, `the tray: uploaded, uploading and failed (${suffix})`);
      } finally {
        hold.release();
        await page.unroute("**/api/uploads", hold.handler);
      }
      await context.close();
    }
  });

  await live("changes made while a client was cut off arrive when it reconnects (sync with changes_after)", async () => {
    // alice's WebSocket goes through the test from now on, which can keep it from connecting
    // and sees what it sends.
    let blocked = true;
    const sent = [];
    await alice.context().routeWebSocket(/\/api\/ws$/u, (ws) => {
      if (blocked) {
        ws.close({ code: 1011, reason: "cut off by the test" });
        return;
      }
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        sent.push(String(m));
        server.send(m);
      });
      server.onMessage((m) => ws.send(m));
    });
    browserOffline = true;
    try {
      // Going offline and back replaces the connection: the new ones are cut off.
      await alice.context().setOffline(true);
      await alice.context().setOffline(false);
      await alice.locator(".conn-banner.is-visible").waitFor({ timeout: 5000 });
      const bobsView = bubbleOf(bob, TUNNEL);
      await bobsView.locator(".reaction", { hasText: "👍" }).click();
      await until(async () => JSON.stringify(await chipsOf(bobsView)) === JSON.stringify(["❤️1"]), "bob took back 👍");
      await (await openActions(bob, bobsView)).getByRole("button", { name: "React with 🔥" }).click();
      await until(async () => JSON.stringify(await chipsOf(bobsView)) === JSON.stringify(["❤️1", "🔥1*"]), "bob added 🔥");
      assertEqual(await chipsOf(bubbleOf(alice, TUNNEL)), ["❤️1*", "👍1"], "alice has not seen it yet");
      blocked = false;
      await alice.context().setOffline(true);
      await alice.context().setOffline(false);
      await until(async () => !(await alice.locator(".conn-banner.is-visible").count()), "alice reconnected", 20_000);
    } finally {
      blocked = false;
      await alice.context().setOffline(false);
      browserOffline = false;
    }
    await until(async () => JSON.stringify(await chipsOf(bubbleOf(alice, TUNNEL))) === JSON.stringify(["❤️1*", "🔥1"]), "alice caught up", 15_000);
    const syncs = sent.map((t) => JSON.parse(t)).filter((f) => f.type === "sync" && f.room_id === roomAB);
    assert(syncs.some((f) => typeof f.changes_after === "number"), `alice asked for the changes she missed: ${JSON.stringify(syncs)}`);
  });

  await live("a new contact's first message takes the place of “typing…” in their row at once", async () => {
    const reg = await rest("POST", "/api/auth/register", { body: { username: "noa", password: PASSWORD, display_name: HEBREW_NAME } });
    assertEqual(reg.status, 201, "noa registered");
    const N = await newPage("noa");
    await login(N.page, "noa");
    await addContactViaUi(N.page, "bob", "bob");
    await bob.goto("/");
    await row(bob, "alice").waitFor();
    // noa types (bob is told before her row is in his list), then sends.
    const box = N.page.locator(".composer textarea");
    await box.click();
    await box.type("היי", { delay: 30 });
    await sleep(400);
    await box.fill(HEBREW);
    await box.press("Enter");
    const preview = row(bob, "noa").locator(".contact-row__preview");
    await preview.waitFor();
    // Typing would otherwise linger for its five-second timeout.
    await until(async () => (await preview.textContent()) === HEBREW, "the preview shows noa's message, not “typing…”", 1500);
    await until(async () => (await badgeText(bob, "noa")) === "1", "noa's unread badge");
    await N.context.close();
  });

  await steps.run("infinite scroll loads older history when scrolling up", async () => {
    // carol writes 130 messages to bob through the REST API
    const reg = await rest("POST", "/api/auth/register", { body: { username: "carol", password: PASSWORD, display_name: "Carol Danvers" } });
    assertEqual(reg.status, 201, "carol registered");
    const carol = reg.json.token;
    const c = await rest("POST", "/api/contacts", { token: carol, body: { username: "bob" } });
    assert(c.status === 201 || c.status === 200, "carol added bob");
    const room = c.json.room_id;
    for (let i = 1; i <= 130; i++) {
      const r = await rest("POST", `/api/rooms/${room}/messages`, { token: carol, body: { client_msg_id: `seed-${i}`, body: `History message ${i}` } });
      assert(r.status === 201, `seed ${i}: ${r.status}`);
    }
    const bobToken = await tokenOf(bob);
    await rest("POST", "/api/contacts", { token: bobToken, body: { username: "carol" } });
    await bob.goto(`/chat/${room}`);
    await bob.locator(".msg", { hasText: "History message 130" }).waitFor();
    assert((await bob.locator(".msg").count()) <= 100, "not everything loaded at once");
    for (let i = 0; i < 20 && !(await bob.locator(".msglist__start").count()); i++) {
      await bob.locator(".msglist__scroller").evaluate((el) => (el.scrollTop = 0));
      await sleep(300);
    }
    await bob.locator(".msg", { hasText: "History message 1" }).first().waitFor();
    await bob.locator(".msglist__start").waitFor();
    const texts = await messageTexts(bob);
    assertEqual(texts.length, 130, "all 130 messages once");
    assertEqual(texts[0], "History message 1", "oldest first");
    if (hasWs) {
      // scrolled up: a new message shows the jump button instead of moving the view
      await rest("POST", `/api/rooms/${room}/messages`, { token: carol, body: { client_msg_id: "seed-131", body: "History message 131" } });
      await bob.locator(".jump.has-new").waitFor();
      await checkScreen(bob, "a long history, scrolled up, with new messages below");
      await bob.locator(".jump").click();
      await until(
        () => bob.locator(".msglist__scroller").evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 60),
        "jumped to the bottom",
      );
    }
  });

  await steps.run("not-found pages: an unknown address and a room that is not yours", async () => {
    await bob.goto("/no/such/page");
    await bob.getByRole("heading", { name: "Page not found" }).waitFor();
    await checkScreen(bob, "page not found");
    await bob.goto("/chat/987654");
    await bob.getByRole("heading", { name: "Conversation not found" }).waitFor();
    await checkScreen(bob, "conversation not found");
  });

  await steps.run("realistic contacts and conversations: long names and previews, unbroken words, a URL, emoji, Arabic (desktop and phone)", async () => {
    // People write to bob; he adds them back. The last one to write is at the top of his list.
    // Lines are theirs, or bob's where written { bob: "…" }.
    const writers = [
      { username: "zoe", display_name: "Zoë 🌈 Fernández-Østergaard", messages: [EMOJI] },
      { username: LONG_USERNAME, display_name: UNBROKEN_NAME, messages: [UNBROKEN_WORD] },
      { username: "leila", display_name: ARABIC_NAME, messages: [ARABIC] },
      { username: "maxi", display_name: LONG_NAME, messages: ["Here is the whole plan, stops and tickets 👇 tell me what you think!", LONG_URL] },
      {
        username: "dave",
        display_name: "Dave Grohl",
        messages: [
          "Hey Bob, long time! 👋",
          { bob: "Dave! Good to hear from you 😄 How was the tour?" },
          "Exhausting, but the Lisbon show was something else. So… camping this weekend?",
          { bob: "Yes! I booked the spot by the lake, here is the map:\nhttps://maps.example.com/?q=Lake+Bled+campsite&z=15" },
          "Perfect 👌 I'll pick you up at 8 on Saturday",
          "I can bring the tent, the camping stove, the big cool box and my guitar if you want 🏕️🔥🎸",
        ],
      },
    ];
    const bobToken = await tokenOf(bob);
    const rooms = {};
    for (const w of writers) {
      const reg = await rest("POST", "/api/auth/register", { body: { username: w.username, password: PASSWORD, display_name: w.display_name } });
      assertEqual(reg.status, 201, `${w.username} registered`);
      const c = await rest("POST", "/api/contacts", { token: reg.json.token, body: { username: "bob" } });
      rooms[w.username] = c.json.room_id;
      await rest("POST", "/api/contacts", { token: bobToken, body: { username: w.username } });
      for (const [i, line] of w.messages.entries()) {
        const [token, body] = typeof line === "string" ? [reg.json.token, line] : [bobToken, line.bob];
        const r = await rest("POST", `/api/rooms/${c.json.room_id}/messages`, { token, body: { client_msg_id: `${w.username}-${i}`, body } });
        assertEqual(r.status, 201, `${w.username}'s room: a message`);
      }
    }
    for (const [username, display_name] of [["anna", "Anna Karenina"], ["marco", "Marco Polo"]])
      await rest("POST", "/api/auth/register", { body: { username, password: PASSWORD, display_name } });

    for (const [suffix, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
      const { page, context } = await newPage(`bob-${suffix}`, { viewport });
      await login(page, "bob");
      await row(page, "dave").waitFor();
      await until(async () => (await badgeText(page, "dave")) !== "0", "dave's badge");
      for (const username of ["dave", "maxi", LONG_USERNAME, "leila"]) await assertRowShowsAll(page, username, `bob's row for ${username}`);
      await shot(page, `contacts-unread-${suffix}`);
      if (suffix === "desktop") await checkScreen(page, "conversations, realistic");
      await context.close();
    }
    for (const [suffix, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
      const { page, context } = await newPage(`bob-${suffix}`, { viewport });
      await login(page, "bob");
      await row(page, "dave").click();
      await page.locator(".msg", { hasText: "and my guitar if you want" }).waitFor();
      await shot(page, `conversation-${suffix}`);
      if (suffix === "phone") await page.getByRole("button", { name: "Back to conversations" }).click();
      await page.getByRole("button", { name: "Find people" }).first().click();
      await page.getByLabel("Search all users by name or username").fill("a");
      await page.locator(".user-result", { hasText: `@${LONG_USERNAME}` }).waitFor();
      await page.locator(".user-result", { hasText: "@anna" }).waitFor();
      await shot(page, `user-search-${suffix}`);
      if (suffix === "phone") await checkScreen(page, "find people, realistic");
      await page.keyboard.press("Escape");
      await context.close();
    }
    const talks = await newPage("bob-talks");
    await login(talks.page, "bob");
    for (const [username, screen] of [
      ["maxi", "a conversation with a 64-character name and a long URL"],
      [LONG_USERNAME, "a conversation with an unbroken name and word"],
      ["leila", "a conversation in Arabic"],
      ["zoe", "a conversation of emoji"],
    ]) {
      await talks.page.goto(`/chat/${rooms[username]}`);
      await talks.page.locator(".msg").first().waitFor();
      await checkScreen(talks.page, screen);
    }
    await talks.context.close();

    const dark = await newPage("bob-dark", { viewport: DESKTOP, colorScheme: "dark" });
    await login(dark.page, "bob");
    await row(dark.page, "dave").waitFor();
    await checkScreen(dark.page, "conversations, dark");
    await row(dark.page, "dave").click();
    await dark.page.locator(".msg", { hasText: "and my guitar if you want" }).waitFor();
    await shot(dark.page, "conversation-dark-desktop");
    await checkScreen(dark.page, "a conversation, dark");
    await dark.context.close();

    const fresh = await newPage("erin-phone", { viewport: PHONE });
    await fresh.page.goto("/login");
    await shot(fresh.page, "login-phone");
    await register(fresh.page, "erin", "Erin Hannon");
    await fresh.page.getByRole("heading", { name: "No conversations yet" }).waitFor();
    await shot(fresh.page, "empty-state-phone");
    await fresh.context.close();

    // A newcomer whose name is one unbroken 64-character word is welcomed by it.
    const wolf = await newPage("wolf");
    await register(wolf.page, "wolf", UNBROKEN_NAME);
    await wolf.page.getByRole("heading", { name: "No conversations yet" }).waitFor();
    await checkScreen(wolf.page, "no conversations yet, with an unbroken 64-character name");
    await wolf.context.close();
  });

  await steps.run("message changes with real people's text: replies, edits, a deletion and many reactions (desktop and phone)", async () => {
    const reg = await rest("POST", "/api/auth/register", { body: { username: "amira", password: PASSWORD, display_name: "أميرة الحسيني" } });
    assertEqual(reg.status, 201, "amira registered");
    const amira = reg.json.token;
    const bobToken = await rest("POST", "/api/auth/login", { body: { username: "bob", password: PASSWORD } }).then((r) => r.json.token);
    const c = await rest("POST", "/api/contacts", { token: amira, body: { username: "bob" } });
    const room = c.json.room_id;
    await rest("POST", "/api/contacts", { token: bobToken, body: { username: "amira" } });
    let n = 0;
    const say = async (token, body, replyTo) => {
      const r = await rest("POST", `/api/rooms/${room}/messages`, { token, body: { client_msg_id: `amira-${n++}`, body, ...(replyTo ? { reply_to: replyTo } : {}) } });
      assertEqual(r.status, 201, `a message: ${body}`);
      return r.json.id;
    };
    const react = async (token, id, emoji) => {
      const r = await rest("PUT", `/api/rooms/${room}/messages/${id}/reactions/${encodeURIComponent(emoji)}`, { token });
      assertEqual(r.status, 200, `reaction ${emoji}`);
    };
    const arabic = await say(amira, ARABIC);
    const plan = await say(bobToken, "Yes! Let's call at 6 — I'll send the link 📞 Here is the plan for the whole week, stops and tickets included", arabic);
    const word = await say(bobToken, UNBROKEN_WORD, arabic);
    await say(amira, "😂😂😂 what is that word?!", word);
    const oops = await say(amira, "Sorry, wrong photo, ignore that");
    await say(bobToken, HEBREW, oops);
    const edit = await rest("PATCH", `/api/rooms/${room}/messages/${plan}`, {
      token: bobToken,
      body: { body: "Yes! Let's call at 7 — I'll send the link 📞 Here is the plan for the whole week, stops and tickets included" },
    });
    assertEqual(edit.status, 200, "bob edits");
    assertEqual((await rest("DELETE", `/api/rooms/${room}/messages/${oops}`, { token: amira })).status, 204, "amira deletes");
    for (const emoji of ["👍", "❤️", "😂", "😮", "😢", "🙏", "🎉", "🔥"]) await react(amira, arabic, emoji);
    for (const emoji of ["❤️", "🎉", "👨‍👩‍👧‍👦", "👍🏽"]) await react(bobToken, arabic, emoji);
    await react(amira, plan, "👍");
    await react(bobToken, word, "😂");
    await react(amira, word, "😂");
    await say(amira, `${LONG_URL} ✈️`, plan);

    for (const [suffix, viewport, colorScheme] of [["desktop", DESKTOP, "light"], ["phone", PHONE, "light"], ["dark-desktop", DESKTOP, "dark"]]) {
      const { page, context } = await newPage(`bob-changes-${suffix}`, { viewport, colorScheme });
      await login(page, "bob");
      await page.goto(`/chat/${room}`);
      await page.locator(".msg__quote", { hasText: "Let's call at 7" }).waitFor();
      await page.locator(".msg__quote.is-gone").waitFor();
      assertEqual(await page.locator(".msg").first().locator(".reaction").count(), 10, "ten chips on the Arabic message");
      // From the top: the Arabic message with its many reactions, and what answers it.
      await page.locator(".msglist__scroller").evaluate((el) => (el.scrollTop = 0));
      await shot(page, `conversation-changes-${suffix}`);
      const menu = await openActions(page, bubbleOf(page, "Let's call at 7"));
      await menu.getByRole("button", { name: "Edit" }).waitFor();
      if (colorScheme === "light") await shot(page, `message-actions-${suffix}`);
      if (suffix === "phone") await checkScreen(page, "message changes, realistic, with the actions menu");
      await page.keyboard.press("Escape");
      await checkScreen(page, `message changes, realistic (${suffix})`);
      await context.close();
    }
  });

  await steps.run("keyboard: arrow keys move through the contacts list and Enter opens a chat", async () => {
    await bob.goto("/");
    await row(bob, "alice").waitFor();
    await bob.getByLabel("Search your contacts").focus();
    await bob.keyboard.press("ArrowDown");
    const first = await bob.evaluate(() => document.activeElement?.closest(".contact-row")?.getAttribute("data-username"));
    assert(first, "a contact row has focus");
    await bob.keyboard.press("ArrowDown");
    const second = await bob.evaluate(() => document.activeElement?.closest(".contact-row")?.getAttribute("data-username"));
    assert(second && second !== first, "the next row has focus");
    await bob.keyboard.press("Enter");
    await bob.waitForURL(/\/chat\/\d+$/u);
  });

  await steps.run("searching your contacts filters the list", async () => {
    await bob.goto("/");
    await row(bob, "alice").waitFor();
    await row(bob, "dave").waitFor();
    const all = await bob.locator(".contact-row").count();
    await bob.getByLabel("Search your contacts").fill("dav");
    await until(async () => (await bob.locator(".contact-row").count()) === 1, "one match");
    await row(bob, "dave").waitFor();
    // Someone pastes a long unbroken word: the "no match" note and the offer to search everyone wrap.
    await bob.getByLabel("Search your contacts").fill("Rumpelstiltskin".repeat(4));
    await bob.getByText("No contact matches").waitFor();
    await bob.getByRole("button", { name: /Search all users for/u }).waitFor();
    await checkScreen(bob, "searching your contacts, no match");
    await bob.getByLabel("Search your contacts").fill("");
    await until(async () => (await bob.locator(".contact-row").count()) === all, `all ${all} back`);
  });

  await steps.run("a 401 anywhere logs out cleanly back to the login screen", async () => {
    await bob.goto("/");
    await row(bob, "alice").waitFor();
    const token = await tokenOf(bob);
    const r = await rest("POST", "/api/auth/logout", { token });
    assertEqual(r.status, 204, "token revoked from outside");
    // The next REST call (the contacts list after a reload) answers 401; the page must end the
    // session and explain why, whichever of the socket or REST notices first.
    await bob.reload();
    await bob.waitForURL((u) => u.pathname === "/login");
    await bob.getByText("Your session ended").waitFor();
    assertEqual(await tokenOf(bob), null, "session removed from localStorage");
  });

  await steps.run("logout returns to the login page and the old token no longer works", async () => {
    const token = await tokenOf(alice);
    assertEqual((await rest("GET", "/api/me", { token })).status, 200, "token works before logout");
    await alice.goto("/");
    await alice.getByRole("button", { name: "Log out" }).click();
    await alice.waitForURL((u) => u.pathname === "/login");
    await alice.getByRole("heading", { name: "Welcome back" }).waitFor();
    assertEqual(await tokenOf(alice), null, "session removed from localStorage");
    assertEqual((await rest("GET", "/api/me", { token })).status, 401, "old token refused");
    await alice.goto("/");
    await alice.waitForURL((u) => u.pathname === "/login");
  });

  await live("admin: the CLI makes an admin, who moderates a room and deactivates a user mid-chat", async () => {
    // The first admin comes from the command line, on the server's own database.
    const out = execFileSync(server.bin, ["admin", "create", "--username", "root", "--display-name", "Site Operator"], {
      env: {
        ...process.env,
        DATABASE_URL: `sqlite://${join(server.dir, "db.db")}`,
        LETSCHAT_ADMIN_PASSWORD: PASSWORD,
        LETSCHAT_BCRYPT_COST: "4",
      },
      encoding: "utf8",
    });
    assert(out.includes("created administrator root"), `admin create said: ${out}`);

    // grace and henry chat; henry keeps the conversation open.
    for (const [u, d] of [["grace", "Grace Hopper"], ["henry", "Henry Ford"]]) {
      const r = await rest("POST", "/api/auth/register", { body: { username: u, password: PASSWORD, display_name: d } });
      assertEqual(r.status, 201, `register ${u}`);
    }
    const E = await newPage("grace");
    const F = await newPage("henry");
    await login(E.page, "grace");
    await addContactViaUi(E.page, "henry", "henry");
    const roomEF = Number(new URL(E.page.url()).pathname.split("/").pop());
    await login(F.page, "henry");
    await F.page.goto(`/chat/${roomEF}`);
    await send(E.page, "Hi Henry! Here is my phone number: 555-0100");
    await send(E.page, "Oops, I should not have posted that.");
    await F.page.locator(".msg", { hasText: "Oops, I should not have posted that." }).waitFor();

    // Only admins see the way in.
    assertEqual(await E.page.getByRole("button", { name: "Administration" }).count(), 0, "no admin button for grace");
    const R = await newPage("root");
    const root = R.page;
    await login(root, "root");
    await root.getByRole("button", { name: "Administration" }).click();
    await root.waitForURL((u) => u.pathname === "/admin");
    await root.locator('tr[data-username="grace"]').waitFor();
    await shot(root, "admin-users-desktop");
    await checkScreen(root, "administration: users");
    await root.getByLabel("Search users").fill("hen");
    await until(async () => (await root.locator("tbody tr[data-username]").count()) === 1, "search narrows to henry");
    await root.getByLabel("Search users").fill("");

    // The room's messages; delete the one with the phone number.
    await root.getByRole("link", { name: "Rooms" }).click();
    await root.locator(`tr[data-room-id="${roomEF}"]`).waitFor();
    await checkScreen(root, "administration: rooms");
    await root.locator(`tr[data-room-id="${roomEF}"]`).click();
    await root.waitForURL((u) => u.pathname === `/admin/rooms/${roomEF}`);
    const target = root.locator(".admin-message", { hasText: "555-0100" });
    await target.getByRole("button", { name: "Delete" }).click();
    await target.getByRole("button", { name: "Delete message" }).click();
    await root.locator(".admin-message.is-deleted").waitFor();
    await shot(root, "admin-room-desktop");
    await checkScreen(root, "administration: a room");
    // henry's open conversation shows the tombstone at once.
    await F.page.locator(".msg.is-deleted .msg__deleted", { hasText: "message deleted" }).waitFor();
    assertEqual(await F.page.locator(".msg", { hasText: "555-0100" }).count(), 0, "the deleted text is gone from henry's view");

    // Deactivate grace while she is chatting: her client lands on the login page.
    await root.goto("/admin");
    await root.locator('tr[data-username="grace"]').click();
    await root.getByRole("heading", { name: "Grace Hopper" }).waitFor();
    await root.getByRole("button", { name: "Deactivate" }).click();
    await root.getByRole("button", { name: "Deactivate now" }).click();
    await root.getByText("Account deactivated").waitFor();
    await shot(root, "admin-user-desktop");
    await checkScreen(root, "administration: a user");
    await E.page.waitForURL((u) => u.pathname === "/login", { timeout: 10_000 });
    assertEqual(await tokenOf(E.page), null, "grace's session is gone");
    // And she cannot log back in.
    await E.page.getByLabel("Username").fill("grace");
    await E.page.getByLabel("Password").fill(PASSWORD);
    await E.page.getByRole("button", { name: "Log in" }).click();
    await E.page.getByText("deactivated").waitFor();

    await root.getByRole("link", { name: "Statistics" }).click();
    await root.locator(".admin-stat").first().waitFor();
    await shot(root, "admin-stats-desktop");
    await checkScreen(root, "administration: statistics");
    await root.getByRole("link", { name: "Audit log" }).click();
    await root.locator('tr[data-action="user.deactivate"]').waitFor();
    await root.locator('tr[data-action="message.delete"]').waitFor();
    await shot(root, "admin-audit-desktop");
    await checkScreen(root, "administration: audit log");
    for (const p of [E, F, R]) await p.context.close();
  });

  await steps.run("a device token keeps its owner signed in while someone guesses their password", async () => {
    const { page, context } = await newPage("ivy");
    await register(page, "ivy", "Ivy 🌿 Ng");
    const kept = await page.evaluate(() => localStorage.getItem("letschat.deviceTokens"));
    assert(kept && kept.includes('"ivy"'), `the browser keeps ivy's device token: ${kept}`);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL((u) => u.pathname === "/login");
    let locked = false;
    for (let i = 0; i < 150 && !locked; i++) {
      const r = await rest("POST", "/api/auth/login", { body: { username: "ivy", password: `guess-${i}-wrong` } });
      locked = r.status === 429;
    }
    assert(locked, "guessing throttles the account for logins without its device token");
    const bare = await rest("POST", "/api/auth/login", { body: { username: "ivy", password: PASSWORD } });
    assertEqual(bare.status, 429, "the right password without the device token waits");
    await login(page, "ivy");
    await page.getByRole("button", { name: "Log out" }).waitFor();
    await context.close();
  });

  // ---- account settings ----------------------------------------------------------------------
  const NEW_PASSWORD = "a kettle of fish and chips";
  const sessionRows = (page) => page.locator(".sessions .session");

  await live("settings: alice changes her display name; bob, with their conversation open, sees it live", async () => {
    await login(alice, "alice");
    await login(bob, "bob");
    await bob.goto(`/chat/${roomAB}`);
    await bob.locator(".conv__name", { hasText: "Alice Liddell" }).waitFor();
    await alice.getByRole("button", { name: "Settings" }).click();
    await alice.waitForURL((u) => u.pathname === "/settings");
    await alice.getByRole("heading", { name: "Settings" }).waitFor();
    await sessionRows(alice).first().waitFor();
    await checkScreen(alice, "settings");
    // The server's own checks show on the field: a name with nothing visible in it.
    const name = alice.getByLabel("Display name");
    await name.fill("\u200b\u200b");
    await alice.getByRole("button", { name: "Save name" }).click();
    await alice.locator(".field.has-error .field__error").waitFor();
    await name.fill("Alice Kingsleigh");
    await alice.getByRole("button", { name: "Save name" }).click();
    await alice.getByText("Your name is saved.").waitFor();
    await bob.locator(".conv__name", { hasText: "Alice Kingsleigh" }).waitFor({ timeout: 5000 });
    await row(bob, "alice").filter({ hasText: "Alice Kingsleigh" }).waitFor({ timeout: 5000 });
    // Her own header says so at once, without a reload.
    await alice.getByRole("link", { name: "Back to chats" }).click();
    await alice.waitForURL((u) => u.pathname === "/");
    await alice.locator(".sidebar__me-name", { hasText: "Alice Kingsleigh" }).waitFor();
  });

  await live("settings: alice on a second device; the first lists both and logs the other out, which lands on the login page", async () => {
    const second = await newPage("alice-phone", { viewport: PHONE });
    const phone = second.page;
    await login(phone, "alice");
    await phone.getByRole("button", { name: "Settings" }).click();
    await phone.waitForURL((u) => u.pathname === "/settings");
    await until(async () => (await sessionRows(phone).count()) === 2, "the phone lists two sessions");
    // The phone's shot shows its devices (the forms are above them).
    await sessionRows(phone).first().evaluate((el) => el.closest(".settings-card")?.scrollIntoView({ block: "start" }));
    await shot(phone, "settings-phone");
    await checkScreen(phone, "settings on a phone, two devices");
    await alice.goto("/settings");
    await until(async () => (await sessionRows(alice).count()) === 2, "two sessions listed");
    const current = alice.locator(".session--current");
    assertEqual(await current.count(), 1, "one session is this device");
    assert((await current.textContent()).includes("This device"), "it says This device");
    assert(/on Linux/u.test(await current.locator(".session__device").textContent()), "the device is described from its user agent");
    assertEqual(await current.getByRole("button").count(), 0, "no Log out on this device's row");
    await shot(alice, "settings-desktop");
    await alice.locator(".session:not(.session--current)").getByRole("button", { name: /^Log out/u }).click();
    await until(async () => (await sessionRows(alice).count()) === 1, "the other session leaves the list");
    await phone.waitForURL((u) => u.pathname === "/login", { timeout: 8000 });
    assertEqual(await tokenOf(phone), null, "the phone's session is gone");
    // And the list, fetched again, agrees.
    await alice.reload();
    await until(async () => (await sessionRows(alice).count()) === 1, "one session after a reload");
    await alice.getByText("You're not signed in anywhere else.").waitFor();
    await second.context.close();
  });

  await steps.run("settings: “Log out everywhere else” ends two other sessions after a confirmation; this device stays", async () => {
    const others = [];
    for (let i = 0; i < 2; i++) {
      const r = await rest("POST", "/api/auth/login", { body: { username: "alice", password: PASSWORD } });
      assertEqual(r.status, 200, "another device signs in");
      others.push(r.json.token);
    }
    await alice.reload();
    await until(async () => (await sessionRows(alice).count()) === 3, "three sessions listed");
    await alice.getByRole("button", { name: "Log out everywhere else" }).click();
    const dialog = alice.getByRole("alertdialog", { name: "Log out everywhere else?" });
    await dialog.getByText("The 2 other devices will have to log in again.").waitFor();
    // Cancel first: nothing ends.
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "detached" });
    assertEqual((await rest("GET", "/api/me", { token: others[0] })).status, 200, "cancelled: the others still work");
    await alice.getByRole("button", { name: "Log out everywhere else" }).click();
    await dialog.getByRole("button", { name: "Log out others" }).click();
    await dialog.waitFor({ state: "detached" });
    await until(async () => (await sessionRows(alice).count()) === 1, "only this device is left");
    await alice.getByText("You're not signed in anywhere else.").waitFor();
    for (const token of others) {
      assertEqual((await rest("GET", "/api/me", { token })).status, 401, "an ended session's token is refused");
    }
    assertEqual((await rest("GET", "/api/me", { token: await tokenOf(alice) })).status, 200, "this device stays signed in");
  });

  await steps.run("settings: a wrong current password shows on its field; then the change succeeds and says other devices were signed out", async () => {
    const form = alice.getByRole("form", { name: "Change password" });
    await form.getByLabel("Current password").fill(PASSWORD);
    await form.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
    await form.getByLabel("Confirm new password").fill(`${NEW_PASSWORD}!`);
    await form.getByRole("button", { name: "Change password" }).click();
    await form.getByText("The passwords don't match.").waitFor();
    await form.getByLabel("Current password").fill("not my password at all");
    await form.getByLabel("Confirm new password").fill(NEW_PASSWORD);
    await form.getByRole("button", { name: "Change password" }).click();
    const currentField = form.locator(".field", { has: alice.getByLabel("Current password") });
    await currentField.locator(".field__error").waitFor();
    assert(await currentField.evaluate((el) => el.classList.contains("has-error")), "the error is on the current password");
    await checkScreen(alice, "settings, a password error");
    await form.getByLabel("Current password").fill(PASSWORD);
    await form.getByRole("button", { name: "Change password" }).click();
    await form.getByText("Password changed. Your other devices were signed out.").waitFor();
    assertEqual((await rest("POST", "/api/auth/login", { body: { username: "alice", password: PASSWORD } })).status, 401, "the old password is refused");
    const ok = await rest("POST", "/api/auth/login", { body: { username: "alice", password: NEW_PASSWORD } });
    assertEqual(ok.status, 200, "the new password works");
    await rest("POST", "/api/auth/logout", { token: ok.json.token });
    // This device stays signed in.
    assertEqual((await rest("GET", "/api/me", { token: await tokenOf(alice) })).status, 200, "alice's own token still works");
  });

  await live("settings: alice deletes her account with her password and lands on the login page; bob sees “Deleted user”", async () => {
    await bob.goto(`/chat/${roomAB}`);
    await bob.locator(".conv__name", { hasText: "Alice Kingsleigh" }).waitFor();
    await alice.getByRole("button", { name: "Delete my account…" }).click();
    const dialog = alice.getByRole("alertdialog", { name: "Delete your account?" });
    await dialog.getByLabel("Password").fill("wrong password");
    await dialog.getByRole("button", { name: "Delete account" }).click();
    await dialog.getByText("That's not your password.").waitFor();
    await checkScreen(alice, "settings, deleting the account");
    await dialog.getByLabel("Password").fill(NEW_PASSWORD);
    await dialog.getByRole("button", { name: "Delete account" }).click();
    await alice.waitForURL((u) => u.pathname === "/login", { timeout: 8000 });
    await alice.getByText("Your account was deleted.").waitFor();
    assertEqual(await tokenOf(alice), null, "the session is gone");
    await bob.locator(".conv__name", { hasText: "Deleted user" }).waitFor({ timeout: 5000 });
    await checkScreen(bob, "a conversation with a deleted user");
  });

  await steps.run("every screen passed the layout and accessibility checks at phone and desktop widths", async () => {
    assert(checkedScreens.length >= 25, `only ${checkedScreens.length} screens were checked: ${checkedScreens.join(", ")}`);
    console.log(`    ${checkedScreens.length} screens checked: ${checkedScreens.join(" · ")}`);
  });

  await steps.run("no errors in the browser console", async () => {
    assert(consoleErrors.length === 0, `console errors:\n${consoleErrors.join("\n")}`);
  });

  return hasWs;
}

let hasWs = false;
const t0 = Date.now();
try {
  hasWs = await main();
} catch (err) {
  steps.failed = true;
  steps.results.push({ name: "harness", status: "fail", err });
  console.log(`✖ FAIL  harness: ${err?.stack ?? err}`);
  if (server) console.log(server.tail());
} finally {
  if (steps.failed && server) console.log(`--- server log (tail)\n${server.tail()}`);
  await browser?.close().catch(() => undefined);
  await server?.stop().catch(() => undefined);
  server?.cleanup();
}

const { passed, failed, skipped } = steps.summary();
console.log(`\ne2e finished in ${((Date.now() - t0) / 1000).toFixed(1)} s${skipped ? `; ${skipped} skipped` : ""}`);
if (!hasWs && !failed) console.log("the WebSocket steps did not run: /api/ws is missing on this server");
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || skipped > 0 ? 1 : 0);
