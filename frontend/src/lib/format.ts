// Display formatting: times, day labels, initials and safe link detection.

const MINUTE = 60_000;
const DAY = 86_400_000;

function startOfDay(d: Date): number {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** Whole calendar days between two dates in local time (0 = same day). */
export function daysBetween(a: Date, b: Date): number {
  return Math.round((startOfDay(b) - startOfDay(a)) / DAY);
}

export function formatClock(iso: string, locale?: string): string {
  return new Date(iso).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
}

/** The contacts list's time: clock today, "Yesterday", weekday this week, else a short date. */
export function formatListTime(iso: string, now: Date = new Date(), locale?: string): string {
  const d = new Date(iso);
  const days = daysBetween(d, now);
  if (days <= 0) return formatClock(iso, locale);
  if (days === 1) return "Yesterday";
  if (days < 7) return d.toLocaleDateString(locale, { weekday: "short" });
  if (d.getFullYear() === now.getFullYear()) return d.toLocaleDateString(locale, { day: "numeric", month: "short" });
  return d.toLocaleDateString(locale, { day: "numeric", month: "short", year: "numeric" });
}

/** The separator between days in a conversation. */
export function formatDayLabel(iso: string, now: Date = new Date(), locale?: string): string {
  const d = new Date(iso);
  const days = daysBetween(d, now);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  const opts: Intl.DateTimeFormatOptions = { weekday: "long", day: "numeric", month: "long" };
  if (d.getFullYear() !== now.getFullYear()) opts.year = "numeric";
  return d.toLocaleDateString(locale, opts);
}

/** "last seen"-style relative time for short spans. */
export function formatRelative(iso: string, now: Date = new Date()): string {
  const diff = now.getTime() - new Date(iso).getTime();
  if (diff < MINUTE) return "just now";
  if (diff < 60 * MINUTE) return `${Math.floor(diff / MINUTE)} min ago`;
  return formatListTime(iso, now);
}

/** Up to two initials from a display name ("Ada Lovelace" -> "AL", "bob" -> "B"). */
export function initials(name: string): string {
  const words = name.trim().split(/[\s._-]+/u).filter(Boolean);
  const first = words[0];
  if (!first) return "?";
  const letter = (w: string) => Array.from(w)[0]?.toUpperCase() ?? "";
  const last = words.length > 1 ? words[words.length - 1] : undefined;
  return letter(first) + (last ? letter(last) : "");
}

/** A stable hue for a user's avatar; consecutive ids land far apart on the colour wheel. */
export function hueFor(key: string | number): number {
  let n: number;
  if (typeof key === "number") n = key;
  else {
    n = 0;
    for (let i = 0; i < key.length; i++) n = (n * 31 + key.charCodeAt(i)) >>> 0;
  }
  return Math.round((((n * 137.508) % 360) + 360) % 360);
}

export type TextPart = { kind: "text"; text: string } | { kind: "link"; text: string; href: string };

const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"'`]+/giu;
const TRAILING = /[.,;:!?'"\u2019\u201D*_~]+$/u;

/** Splits text into plain parts and links. Only http(s) links are made; everything stays text. */
export function linkify(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    const start = match.index;
    let raw = match[0];
    // Trailing punctuation belongs to the sentence; a closing bracket only if unbalanced.
    for (;;) {
      const before = raw;
      raw = raw.replace(TRAILING, "");
      for (const [open, close] of [["(", ")"], ["[", "]"]] as const) {
        if (raw.endsWith(close) && count(raw, close) > count(raw, open)) raw = raw.slice(0, -1);
      }
      if (raw === before) break;
    }
    const href = safeHref(raw);
    if (!href) continue;
    if (start > last) parts.push({ kind: "text", text: text.slice(last, start) });
    parts.push({ kind: "link", text: raw, href });
    last = start + raw.length;
  }
  if (last < text.length) parts.push({ kind: "text", text: text.slice(last) });
  return parts;
}

function count(s: string, ch: string): number {
  return s.split(ch).length - 1;
}

function safeHref(raw: string): string | null {
  const candidate = /^www\./iu.test(raw) ? `https://${raw}` : raw;
  try {
    const u = new URL(candidate);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    if (!u.hostname) return null;
    return u.href;
  } catch {
    return null;
  }
}

/** The document title with the unread total. */
export function documentTitle(unread: number, base = "Let's Chat"): string {
  if (unread <= 0) return base;
  return `(${unread > 99 ? "99+" : unread}) ${base}`;
}
