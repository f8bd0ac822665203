// The settings page's pure parts (unit-tested): device descriptions, the sessions list's order
// and labels, and the forms' client-side checks.
import { formatRelative } from "../../lib/format";
import type { AccountSession } from "./api";

const RAW_UA_CHARS = 60;

function browserOf(ua: string): string | null {
  const rules: [RegExp, string][] = [
    [/\bEdgA?\/(\d+)/u, "Edge"],
    [/\bOPR\/(\d+)/u, "Opera"],
    [/\bSamsungBrowser\/(\d+)/u, "Samsung Internet"],
    [/\bFirefox\/(\d+)/u, "Firefox"],
    [/\bFxiOS\/(\d+)/u, "Firefox"],
    [/\bCriOS\/(\d+)/u, "Chrome"],
    [/\bHeadlessChrome\/(\d+)/u, "Headless Chrome"],
    [/\bChromium\/(\d+)/u, "Chromium"],
    [/\bChrome\/(\d+)/u, "Chrome"],
    [/\bVersion\/(\d+)[.\d]*\s+(?:Mobile\/\S+\s+)?Safari\//u, "Safari"],
    [/\bcurl\/(\d+)/u, "curl"],
  ];
  for (const [re, name] of rules) {
    const m = re.exec(ua);
    if (m) return `${name} ${m[1] ?? ""}`.trim();
  }
  return null;
}

function osOf(ua: string): string | null {
  if (/\b(iPhone|iPod)\b/u.test(ua)) return "iPhone";
  if (/\biPad\b/u.test(ua)) return "iPad";
  const android = /\bAndroid(?:\s+(\d+))?/u.exec(ua);
  if (android) return android[1] ? `Android ${android[1]}` : "Android";
  if (/\bCrOS\b/u.test(ua)) return "ChromeOS";
  if (/\bWindows\b/u.test(ua)) return "Windows";
  if (/\bMac OS X\b|\bMacintosh\b/u.test(ua)) return "macOS";
  if (/\bLinux\b|\bX11\b/u.test(ua)) return "Linux";
  return null;
}

/**
 * A person-readable device from a User-Agent: "Firefox 140 on Linux", "Safari 17 on iPhone";
 * when it names neither a known browser nor a known system, the raw string cut to 60 characters;
 * without one, "Unknown device".
 */
export function describeUserAgent(ua: string | null | undefined): string {
  const s = (ua ?? "").trim();
  if (!s) return "Unknown device";
  const browser = browserOf(s);
  const os = osOf(s);
  if (browser && os) return `${browser} on ${os}`;
  if (browser) return browser;
  if (os) return `Browser on ${os}`;
  const chars = Array.from(s);
  return chars.length > RAW_UA_CHARS ? `${chars.slice(0, RAW_UA_CHARS).join("")}…` : s;
}

/** This device first, then the others most recently active first. */
export function sortSessions(list: readonly AccountSession[]): AccountSession[] {
  return [...list].sort((a, b) => {
    if (a.current !== b.current) return a.current ? -1 : 1;
    return Date.parse(b.last_seen_at) - Date.parse(a.last_seen_at);
  });
}

export type SessionView = {
  id: number;
  current: boolean;
  device: string;
  /** "This device" for the session asking, else null. */
  label: string | null;
  /** The address it signed in from, or "Unknown address". */
  ip: string;
  /** "Active now" for this device; else "Active 5 min ago". */
  activity: string;
  /** The raw User-Agent, for a tooltip. */
  rawAgent: string | null;
};

export function sessionView(s: AccountSession, now: Date = new Date()): SessionView {
  return {
    id: s.id,
    current: s.current,
    device: describeUserAgent(s.user_agent),
    label: s.current ? "This device" : null,
    ip: s.ip ?? "Unknown address",
    activity: s.current ? "Active now" : `Active ${formatRelative(s.last_seen_at, now)}`,
    rawAgent: s.user_agent ?? null,
  };
}

export const DISPLAY_NAME_MAX = 64;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

/** The display name field's error, or null when it may be sent. */
export function validateDisplayName(name: string): string | null {
  const t = name.trim();
  if (!t) return "Enter a display name.";
  if (Array.from(t).length > DISPLAY_NAME_MAX) return `At most ${DISPLAY_NAME_MAX} characters.`;
  return null;
}

export type PasswordForm = { current: string; next: string; confirm: string };

/** Errors by the server's field names (`current_password`, `new_password`) plus `confirm`. */
export function validatePasswordForm(f: PasswordForm): Record<string, string> {
  const e: Record<string, string> = {};
  if (!f.current) e.current_password = "Enter your current password.";
  if (f.next.length < PASSWORD_MIN) e.new_password = `At least ${PASSWORD_MIN} characters.`;
  else if (f.next.length > PASSWORD_MAX) e.new_password = `At most ${PASSWORD_MAX} characters.`;
  else if (f.current && f.next === f.current) e.new_password = "Choose a password different from the current one.";
  if (!e.new_password && f.confirm !== f.next) e.confirm = "The passwords don't match.";
  return e;
}
