// End-to-end suite: two people in two browser contexts against the real server on a fresh
// database. Run with `npm run e2e` after `npm run build` and `cargo build -p letschat`.
// Env: LETSCHAT_BIN (default ../target/debug/letschat), CHROMIUM_PATH (default /usr/bin/chromium),
// E2E_HEADED=1 to watch, E2E_KEEP=1 to keep the temp folder (database, server log),
// E2E_SCREENSHOTS=0 to skip writing docs/screenshots.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import {
  assert,
  assertEqual,
  CHROMIUM,
  CHROMIUM_ARGS,
  frontendDir,
  repoDir,
  restClient,
  Server,
  sleep,
  Steps,
  until,
} from "./harness.mjs";

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const PASSWORD = "correct horse battery";
const shotsDir = join(repoDir, "docs", "screenshots");
const takeShots = process.env.E2E_SCREENSHOTS !== "0";

const steps = new Steps();
const consoleErrors = [];
let server;
let browser;
let rest;
/** While the server is down on purpose, failed requests in the console are expected. */
let serverDown = false;

const openPages = new Map();
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
  page.setDefaultTimeout(10_000);
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    // The browser itself logs failed connections; they are expected while the server restarts
    // and after a logout revokes a token (the 401 that ends the session).
    if (serverDown && /Failed to load resource|WebSocket connection|ERR_CONNECTION_REFUSED/u.test(text)) return;
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
  await page.evaluate(() => document.fonts.ready);
  await sleep(350); // let transitions settle
  await page.screenshot({ path: join(shotsDir, `${name}.png`) });
}

const row = (page, username) => page.locator(`a.contact-row[data-username="${username}"]`);
const badgeText = (page, username) =>
  row(page, username).evaluate((el) => el.querySelector(".badge")?.textContent?.trim() ?? "0", undefined, { timeout: 3000 });
const messageTexts = (page) => page.locator(".msg .msg__text").allTextContents();

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
  });

  await steps.run("registering validates the form before calling the server", async () => {
    await alice.goto("/register");
    await alice.getByLabel("Username").fill("a");
    await alice.getByLabel("Password").fill("short");
    await alice.getByRole("button", { name: "Create account" }).click();
    await alice.getByText("3–32 characters").waitFor();
    await alice.getByText("At least 8 characters.").first().waitFor();
  });

  await steps.run("alice and bob register in two browser contexts and see the empty state", async () => {
    await register(alice, "alice", "Alice Liddell");
    await alice.getByRole("heading", { name: "No conversations yet" }).waitFor();
    await shot(alice, "empty-state-desktop");
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
    await shot(alice, "user-search-desktop");
    await dialog.locator(".user-result", { hasText: "@bob" }).getByRole("button", { name: /Add Bob/u }).click();
    await alice.waitForURL(/\/chat\/\d+$/u);
    roomAB = Number(new URL(alice.url()).pathname.split("/").pop());
    await alice.getByRole("heading", { name: "Say hello to Bob Marley" }).waitFor();
    await row(alice, "bob").waitFor();

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
    await send(alice, "Hi Bob! 👋");
    await alice.locator('.msg.is-own[data-state="sent"], .msg.is-own[data-state="read"]').first().waitFor();
    await until(async () => (await badgeText(bob, "alice")) === "1", "bob's badge shows 1");
    await until(async () => (await bob.title()).startsWith("(1)"), "bob's title shows (1)");
    await row(bob, "alice").locator(".contact-row__preview", { hasText: "Hi Bob!" }).waitFor();
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
    await shot(alice, "conversation-desktop");
  });

  await steps.run("reload keeps the session and the history", async () => {
    await bob.reload();
    await bob.waitForURL(`**/chat/${roomAB}`);
    await until(async () => (await bob.locator(".msg").count()) === (hasWs ? 5 : 0), "history is back after reload");
    await row(bob, "alice").waitFor();
    if (hasWs) {
      const texts = await messageTexts(bob);
      assertEqual(texts[0], "Hi Bob! 👋", "first message");
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
    await bob.goto("/chat/987654");
    await bob.getByRole("heading", { name: "Conversation not found" }).waitFor();
  });

  await steps.run("screenshots: contacts with unread badges, conversation, search (desktop and phone)", async () => {
    // dave and carol write to bob so that his list has unread badges
    const reg = await rest("POST", "/api/auth/register", { body: { username: "dave", password: PASSWORD, display_name: "Dave Grohl" } });
    const dave = reg.json.token;
    const d = await rest("POST", "/api/contacts", { token: dave, body: { username: "bob" } });
    await rest("POST", "/api/contacts", { token: await tokenOf(bob), body: { username: "dave" } });
    for (const [i, body] of ["Hey Bob, long time!", "Are we still on for Saturday?"].entries())
      await rest("POST", `/api/rooms/${d.json.room_id}/messages`, { token: dave, body: { client_msg_id: `d-${i}`, body } });
    for (const [username, display_name] of [["anna", "Anna Karenina"], ["marco", "Marco Polo"]])
      await rest("POST", "/api/auth/register", { body: { username, password: PASSWORD, display_name } });
    const carolLogin = await rest("POST", "/api/auth/login", { body: { username: "carol", password: PASSWORD } });
    const cr = await rest("POST", "/api/contacts", { token: carolLogin.json.token, body: { username: "bob" } });
    await rest("POST", `/api/rooms/${cr.json.room_id}/messages`, { token: carolLogin.json.token, body: { client_msg_id: "c-x", body: "Did you see the new photos? 📸" } });

    for (const [suffix, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
      const { page, context } = await newPage(`bob-${suffix}`, { viewport });
      await login(page, "bob");
      await row(page, "dave").waitFor();
      await until(async () => (await badgeText(page, "dave")) === "2", "dave's badge");
      await shot(page, `contacts-unread-${suffix}`);
      await row(page, "alice").click();
      await page.locator(".msg", { hasText: "Same here" }).waitFor();
      await shot(page, `conversation-${suffix}`);
      if (suffix === "phone") {
        await page.getByRole("button", { name: "Back to conversations" }).click();
        await page.getByRole("button", { name: "Find people" }).click();
        await page.getByLabel("Search all users by name or username").fill("a");
        await page.locator(".user-result").first().waitFor();
        await shot(page, "user-search-phone");
        await page.keyboard.press("Escape");
      }
      await context.close();
    }
    const dark = await newPage("bob-dark", { viewport: DESKTOP, colorScheme: "dark" });
    await login(dark.page, "bob");
    await row(dark.page, "alice").click();
    await dark.page.locator(".msg", { hasText: "Same here" }).waitFor();
    await shot(dark.page, "conversation-dark-desktop");
    await dark.context.close();

    const fresh = await newPage("erin-phone", { viewport: PHONE });
    await fresh.page.goto("/login");
    await shot(fresh.page, "login-phone");
    await register(fresh.page, "erin", "Erin Hannon");
    await fresh.page.getByRole("heading", { name: "No conversations yet" }).waitFor();
    await shot(fresh.page, "empty-state-phone");
    await fresh.context.close();
  });

  await steps.run("keyboard: arrow keys move through the contacts list and Enter opens a chat", async () => {
    await bob.goto("/");
    await row(bob, "alice").waitFor();
    await bob.getByLabel("Search your contacts").focus();
    await bob.keyboard.press("ArrowDown");
    const first = await bob.evaluate(() => document.activeElement?.getAttribute("data-username"));
    assert(first, "a contact row has focus");
    await bob.keyboard.press("ArrowDown");
    const second = await bob.evaluate(() => document.activeElement?.getAttribute("data-username"));
    assert(second && second !== first, "the next row has focus");
    await bob.keyboard.press("Enter");
    await bob.waitForURL(/\/chat\/\d+$/u);
  });

  await steps.run("searching your contacts filters the list", async () => {
    await bob.goto("/");
    await row(bob, "alice").waitFor();
    await bob.getByLabel("Search your contacts").fill("dav");
    await until(async () => (await bob.locator("a.contact-row").count()) === 1, "one match");
    await row(bob, "dave").waitFor();
    await bob.getByLabel("Search your contacts").fill("");
    await until(async () => (await bob.locator("a.contact-row").count()) === 3, "all three back");
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
    await root.getByLabel("Search users").fill("hen");
    await until(async () => (await root.locator("tbody tr[data-username]").count()) === 1, "search narrows to henry");
    await root.getByLabel("Search users").fill("");

    // The room's messages; delete the one with the phone number.
    await root.getByRole("link", { name: "Rooms" }).click();
    await root.locator(`tr[data-room-id="${roomEF}"]`).click();
    await root.waitForURL((u) => u.pathname === `/admin/rooms/${roomEF}`);
    const target = root.locator(".admin-message", { hasText: "555-0100" });
    await target.getByRole("button", { name: "Delete" }).click();
    await target.getByRole("button", { name: "Delete message" }).click();
    await root.locator(".admin-message.is-deleted").waitFor();
    await shot(root, "admin-room-desktop");
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
    await root.getByRole("link", { name: "Audit log" }).click();
    await root.locator('tr[data-action="user.deactivate"]').waitFor();
    await root.locator('tr[data-action="message.delete"]').waitFor();
    await shot(root, "admin-audit-desktop");
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
