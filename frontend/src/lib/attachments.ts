// Attachments as the app shows them: human sizes, long names cut in the middle, which are photos,
// the one line that stands for a message in a list, the box a photo gets before it loads and
// how several photos share a grid. Pure, so it is unit-tested; shared by the chat and the
// contacts list.
import type { Attachment, Message } from "../api/types";

/** At most this many attachments per message (the server refuses more). */
export const MAX_ATTACHMENTS = 10;

/** A message's attachments: none for a deleted message, none from a server without them. */
export function attachmentsOf(m: Pick<Message, "attachments" | "deleted_at">): Attachment[] {
  return m.deleted_at != null ? [] : (m.attachments ?? []);
}

export type Photo = Attachment & { thumbnail_url: string; width: number; height: number };

/** Shown inline as a photo: the server decoded it (it has a thumbnail and its size). Anything
 * else, images the server could not read included, is a file card. */
export function isPhoto(a: Attachment): a is Photo {
  return a.thumbnail_url != null && a.width != null && a.width > 0 && a.height != null && a.height > 0;
}

// ---- sizes ----------------------------------------------------------------------------------

const UNITS = ["KB", "MB", "GB", "TB"] as const;

/** "512 B", "1.5 KB", "12 KB", "3.4 MB": one decimal under 10, none from there (1024 per step). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let v = bytes / 1024;
  let i = 0;
  for (;;) {
    const shown = v < 10 ? Math.round(v * 10) / 10 : Math.round(v);
    // 1023.6 KB shows as "1 MB", not "1024 KB".
    if (shown >= 1024 && i < UNITS.length - 1) {
      v /= 1024;
      i += 1;
      continue;
    }
    return `${shown} ${UNITS[i]}`;
  }
}

// ---- names ----------------------------------------------------------------------------------

const segmenter = typeof Intl !== "undefined" && "Segmenter" in Intl ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;

/** User-perceived characters: an emoji with its modifiers, or a letter with its accents, is one. */
export function graphemes(s: string): string[] {
  return segmenter ? Array.from(segmenter.segment(s), (x) => x.segment) : Array.from(s);
}

/** ".pdf" of "report.pdf"; "" for "README", ".bashrc" or "notes." (nothing before or after the dot). */
export function extensionOf(name: string): string {
  const m = /[^.]\.([^.\s/\\]{1,10})$/u.exec(name);
  return m?.[1] ? `.${m[1]}` : "";
}

/** How much of a name's end stays in view when it is cut: the extension and a few characters
 * before it ("…2026.pdf"), so files that differ only at the end stay apart; reaching back to the
 * start of a word when one starts just before ("…2026-07.zip" rather than "…6-07.zip"). */
function tailLength(g: readonly string[], name: string): number {
  const min = shortestTail(name);
  if (g.length <= min) return min;
  for (let back = 0; back <= 5 && min + back < g.length; back++) {
    if (/^[\s\-_.(\[–—]$/u.test(g[g.length - min - back - 1] ?? "")) return min + back;
  }
  return min;
}

/** The least of a name's end that is kept: the extension and four characters, eight at least. */
function shortestTail(name: string): number {
  return Math.max(8, graphemes(extensionOf(name)).length + 4);
}

/** What may sit at a cut without meaning anything: it goes, so the "…" touches a real character. */
const LOOSE_END = /[\s\-_.,–—·]+$/u;
const LOOSE_START = /^[\s\-_,–—·]+/u;

/**
 * Cuts a name longer than `max` characters in the middle, keeping its start and its end with the
 * extension: "very-long-name-of-the-quarterly-report-2026.pdf" → "very-long-name…2026.pdf".
 * Never splits an emoji; no space or dash is left against the "…".
 */
export function middleTruncate(name: string, max: number): string {
  const g = graphemes(name);
  if (g.length <= max) return name;
  let tailLen = Math.max(1, Math.min(tailLength(g, name), max - 4));
  // Short of room, the start matters too: the tail gives back the start of its word before
  // the head is left with fewer than six characters (or fewer than the tail, when less).
  if (max - 1 - tailLen < Math.min(tailLen, 6)) tailLen = Math.max(1, Math.min(tailLen, max - 4, Math.max(shortestTail(name), Math.floor((max - 1) / 2))));
  const headLen = Math.max(1, max - 1 - tailLen);
  const head = g.slice(0, headLen).join("").replace(LOOSE_END, "");
  const tail = g.slice(g.length - tailLen).join("").replace(LOOSE_START, "");
  return `${head}…${tail}`;
}

/**
 * The longest form of a name that fits `width` (as `measure` says, in the same unit): the name
 * itself when it fits, else the name cut in the middle as little as possible. The text is one
 * run, so nothing is left between the "…" and what follows it.
 */
export function fitName(name: string, width: number, measure: (text: string) => number): string {
  if (measure(name) <= width) return name;
  const count = graphemes(name).length;
  const shortest = Math.min(count, 5);
  let lo = shortest;
  let hi = count - 1;
  let best = shortest;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (measure(middleTruncate(name, mid)) <= width) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return middleTruncate(name, best);
}

// ---- kinds ----------------------------------------------------------------------------------

export type FileKind = "pdf" | "image" | "video" | "audio" | "archive" | "sheet" | "slides" | "doc" | "text" | "code" | "file";

const BY_EXTENSION: Record<string, FileKind> = {
  pdf: "pdf",
  zip: "archive", rar: "archive", "7z": "archive", gz: "archive", tgz: "archive", bz2: "archive", xz: "archive", tar: "archive", zst: "archive",
  xls: "sheet", xlsx: "sheet", ods: "sheet", csv: "sheet", tsv: "sheet", numbers: "sheet",
  ppt: "slides", pptx: "slides", odp: "slides", key: "slides",
  doc: "doc", docx: "doc", odt: "doc", rtf: "doc", pages: "doc",
  txt: "text", md: "text", log: "text",
  json: "code", js: "code", ts: "code", tsx: "code", py: "code", rs: "code", go: "code", html: "code", css: "code", xml: "code", yaml: "code", yml: "code", sh: "code", sql: "code",
  mp3: "audio", wav: "audio", ogg: "audio", m4a: "audio", flac: "audio", opus: "audio",
  mp4: "video", mov: "video", mkv: "video", webm: "video", avi: "video",
  png: "image", jpg: "image", jpeg: "image", gif: "image", webp: "image", heic: "image", svg: "image", avif: "image", bmp: "image", tif: "image", tiff: "image",
};

/** The kind of file, for its icon: from the detected content type, else its extension. */
export function fileKind(name: string, contentType: string): FileKind {
  const type = contentType.toLowerCase();
  if (type === "application/pdf") return "pdf";
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("audio/")) return "audio";
  if (/zip|x-tar|gzip|x-7z|x-rar|x-bzip|x-xz|zstd/u.test(type)) return "archive";
  const ext = extensionOf(name).slice(1).toLowerCase();
  return BY_EXTENSION[ext] ?? (type.startsWith("text/") ? "text" : "file");
}

/** The short label on a file's icon: its extension ("PDF", "DOCX"), else "FILE". */
export function fileBadge(name: string): string {
  const ext = extensionOf(name).slice(1);
  return ext && ext.length <= 4 ? ext.toUpperCase() : "FILE";
}

// ---- one line for a message ----------------------------------------------------------------

/** How many characters of a file's name a one-line preview keeps (cut in the middle), so a
 * contacts row usually shows its end, the extension, with no second "…". */
export const PREVIEW_NAME_CHARS = 28;

/**
 * The line that stands for attachments without text: "🖼 Photo" for one photo, "🖼 3 photos" for
 * photos only, else the first file's name, "📎 report.pdf", with "and N more" when there are
 * others (photos or files). Empty for none.
 */
export function attachmentSummary(list: readonly Attachment[]): string {
  if (list.length === 0) return "";
  const file = list.find((a) => !isPhoto(a));
  if (!file) return list.length === 1 ? "🖼 Photo" : `🖼 ${list.length} photos`;
  const more = list.length - 1;
  return `📎 ${middleTruncate(file.name, PREVIEW_NAME_CHARS)}${more > 0 ? ` and ${more} more` : ""}`;
}

/**
 * A message in one line (the contacts list, a notification, a reply's quote): "message deleted"
 * for a tombstone, its text when it has any, else what it carries.
 */
export function messagePreview(m: Pick<Message, "body" | "deleted_at" | "attachments">): string {
  if (m.deleted_at != null) return "message deleted";
  if (m.body.trim()) return m.body;
  return attachmentSummary(attachmentsOf(m));
}

// ---- boxes for photos -----------------------------------------------------------------------

export type BoxLimits = { maxWidth: number; maxHeight: number; minWidth: number; minHeight: number };
export type Box = { width: number; height: number; /** the box has another shape than the photo: it is shown cropped to fill it */ cropped: boolean };

/** A single photo in a message: at most 320 × 360, at least 120 × 96 (a sliver would be unreadable). */
export const PHOTO_LIMITS: BoxLimits = { maxWidth: 320, maxHeight: 360, minWidth: 120, minHeight: 96 };

/**
 * The box a photo of `width` × `height` pixels gets, known before it loads so nothing moves
 * when it does: scaled down (never up) to fit the maximum, keeping its shape; a very wide or
 * very tall photo is held at the minimum on its short side and shown cropped.
 */
export function fitBox(width: number, height: number, limits: BoxLimits = PHOTO_LIMITS): Box {
  if (!(width > 0 && height > 0)) return { width: limits.maxWidth, height: limits.maxWidth, cropped: true };
  const scale = Math.min(1, limits.maxWidth / width, limits.maxHeight / height);
  let w = Math.round(width * scale);
  let h = Math.round(height * scale);
  let cropped = false;
  if (w < limits.minWidth) {
    w = Math.min(limits.minWidth, limits.maxWidth);
    cropped = true;
  }
  if (h < limits.minHeight) {
    h = Math.min(limits.minHeight, limits.maxHeight);
    cropped = true;
  }
  return { width: w, height: h, cropped };
}

export type GridLayout = { columns: number; rows: number; /** columns the first tile spans, so every row is full */ firstSpan: number };

/** Several photos in one message: two columns up to four photos, three from five; the first
 * photo widens to fill the first row. The grid's shape is `columns / rows` (square cells). */
export function gridLayout(count: number): GridLayout {
  if (count <= 1) return { columns: 1, rows: 1, firstSpan: 1 };
  const columns = count <= 4 ? 2 : 3;
  const extra = (columns - (count % columns)) % columns;
  const rows = (count + extra) / columns;
  return { columns, rows, firstSpan: 1 + extra };
}
