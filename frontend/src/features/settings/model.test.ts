import { describe, expect, it } from "vitest";
import type { AccountSession } from "./api";
import { describeUserAgent, sessionView, sortSessions, validateDisplayName, validatePasswordForm } from "./model";

describe("describeUserAgent", () => {
  it.each([
    ["Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", "Firefox 140 on Linux"],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome 131 on Windows"],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge 131 on Windows"],
    ["Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari 17 on macOS"],
    ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari 17 on iPhone"],
    ["Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome 131 on Android 14"],
    ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Headless Chrome 131 on Linux"],
    ["curl/8.5.0", "curl 8"],
  ])("%s", (ua, want) => {
    expect(describeUserAgent(ua)).toBe(want);
  });

  it("falls back to the raw string, cut to 60 characters", () => {
    expect(describeUserAgent("letschat-bot/1.0")).toBe("letschat-bot/1.0");
    const long = `SomeClient/${"x".repeat(100)}`;
    const d = describeUserAgent(long);
    expect(Array.from(d)).toHaveLength(61);
    expect(d.endsWith("…")).toBe(true);
  });

  it("says so when there is none", () => {
    expect(describeUserAgent(null)).toBe("Unknown device");
    expect(describeUserAgent("  ")).toBe("Unknown device");
  });
});

const session = (id: number, minutesAgo: number, current = false, extra: Partial<AccountSession> = {}): AccountSession => ({
  id,
  created_at: "2026-01-01T00:00:00Z",
  last_seen_at: new Date(Date.UTC(2026, 0, 2, 12, 0) - minutesAgo * 60_000).toISOString(),
  user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
  ip: "203.0.113.7",
  current,
  ...extra,
});

describe("sessions list", () => {
  it("puts this device first, then the most recently active", () => {
    const list = [session(1, 30), session(2, 5, true), session(3, 1), session(4, 600)];
    expect(sortSessions(list).map((s) => s.id)).toEqual([2, 3, 1, 4]);
  });

  it("labels this device and says when the others were last active", () => {
    const now = new Date(Date.UTC(2026, 0, 2, 12, 0));
    const mine = sessionView(session(2, 0, true), now);
    expect(mine.label).toBe("This device");
    expect(mine.activity).toBe("Active now");
    expect(mine.device).toBe("Firefox 140 on Linux");
    const other = sessionView(session(3, 5, false, { ip: null, user_agent: null }), now);
    expect(other.label).toBeNull();
    expect(other.activity).toBe("Active 5 min ago");
    expect(other.ip).toBe("Unknown address");
    expect(other.device).toBe("Unknown device");
  });
});

describe("form checks", () => {
  it("display name: present, at most 64 characters", () => {
    expect(validateDisplayName("  ")).toMatch(/enter/i);
    expect(validateDisplayName("a".repeat(65))).toMatch(/64/);
    expect(validateDisplayName("🙂".repeat(64))).toBeNull();
    expect(validateDisplayName(" Alice L. ")).toBeNull();
  });

  it("password: current needed, new 8–128 and different, confirm must match", () => {
    expect(validatePasswordForm({ current: "", next: "short", confirm: "short" })).toEqual({
      current_password: "Enter your current password.",
      new_password: "At least 8 characters.",
    });
    expect(validatePasswordForm({ current: "old password", next: "x".repeat(129), confirm: "" }).new_password).toMatch(/128/);
    expect(validatePasswordForm({ current: "same one!", next: "same one!", confirm: "same one!" }).new_password).toMatch(/different/);
    expect(validatePasswordForm({ current: "old password", next: "new password 1", confirm: "new password 2" })).toEqual({
      confirm: "The passwords don't match.",
    });
    expect(validatePasswordForm({ current: "old password", next: "new password 1", confirm: "new password 1" })).toEqual({});
  });
});
