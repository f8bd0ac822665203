// The files being attached to the message in the composer: each one uploads as soon as it is
// added (a few at a time), can be cancelled while it uploads, removed at any time and retried
// when it failed. The message can go when every file is uploaded. A pure reducer, so every
// transition is unit-tested; the hook (useUploads) runs the uploads it asks for.
import type { Upload } from "../../api/types";
import { MAX_ATTACHMENTS } from "../../lib/attachments";

export type UploadStatus = "queued" | "uploading" | "done" | "failed";

export type UploadItem = {
  key: string;
  /** The file itself (what uploads, and what the tray previews). */
  file: File | null;
  name: string;
  size: number;
  /** The type the browser gives the file (the server detects its own). */
  type: string;
  status: UploadStatus;
  /** Share of the file sent, 0…1, in whole percents. */
  progress: number;
  upload: Upload | null;
  /** Why it failed, in the user's words. */
  error: string | null;
};

export type NewFile = { key: string; name: string; size: number; type: string; file?: File };

export type UploadQueue = {
  items: UploadItem[];
  /** Something to tell the user about the last files added (over the limit, folders). */
  notice: string | null;
};

export type QueueAction =
  | { type: "add"; files: NewFile[]; /** files that could not be read as files (folders) */ skipped?: number }
  | { type: "start"; key: string }
  | { type: "progress"; key: string; fraction: number }
  | { type: "done"; key: string; upload: Upload }
  | { type: "fail"; key: string; error: string }
  | { type: "retry"; key: string }
  /** An upload in progress (or waiting for its turn) is given up: it leaves the tray. */
  | { type: "cancel"; key: string }
  | { type: "remove"; key: string }
  /** The message was sent with them, or the user started over. */
  | { type: "clear" }
  | { type: "dismiss-notice" };

export const emptyQueue: UploadQueue = { items: [], notice: null };

/** Uploads running at once: the server lets a user have 4 in progress; one is left for another tab. */
export const PARALLEL_UPLOADS = 3;

function files(n: number): string {
  return n === 1 ? "1 file" : `${n} files`;
}

/** The note shown when not every file offered could be added. */
export function addNotice(overLimit: number, folders: number): string | null {
  const parts: string[] = [];
  if (overLimit > 0)
    parts.push(`You can send up to ${MAX_ATTACHMENTS} files in one message: ${files(overLimit)} ${overLimit === 1 ? "was" : "were"} not added.`);
  if (folders > 0) parts.push(`Folders can't be sent: ${folders === 1 ? "1 folder was" : `${folders} folders were`} skipped.`);
  return parts.length > 0 ? parts.join(" ") : null;
}

function update(q: UploadQueue, key: string, from: readonly UploadStatus[], change: (it: UploadItem) => UploadItem): UploadQueue {
  const i = q.items.findIndex((it) => it.key === key);
  const it = q.items[i];
  if (!it || !from.includes(it.status)) return q;
  const next = change(it);
  if (next === it) return q;
  const items = [...q.items];
  items[i] = next;
  return { ...q, items };
}

function without(q: UploadQueue, key: string, from: readonly UploadStatus[]): UploadQueue {
  const it = q.items.find((x) => x.key === key);
  if (!it || !from.includes(it.status)) return q;
  return { ...q, items: q.items.filter((x) => x.key !== key) };
}

export function queueReducer(q: UploadQueue, a: QueueAction): UploadQueue {
  switch (a.type) {
    case "add": {
      const room = Math.max(0, MAX_ATTACHMENTS - q.items.length);
      const taken = a.files.slice(0, room).map(
        (f): UploadItem => ({ key: f.key, file: f.file ?? null, name: f.name, size: f.size, type: f.type, status: "queued", progress: 0, upload: null, error: null }),
      );
      const notice = addNotice(a.files.length - taken.length, a.skipped ?? 0);
      if (taken.length === 0 && notice === q.notice) return q;
      return { items: [...q.items, ...taken], notice };
    }
    case "start":
      return update(q, a.key, ["queued"], (it) => ({ ...it, status: "uploading", progress: 0 }));
    case "progress":
      return update(q, a.key, ["uploading"], (it) => {
        // Whole percents, forward only: a render per percent at most.
        const p = Math.floor(Math.min(1, Math.max(0, a.fraction)) * 100) / 100;
        return p > it.progress ? { ...it, progress: p } : it;
      });
    case "done":
      return update(q, a.key, ["uploading"], (it) => ({ ...it, status: "done", progress: 1, upload: a.upload, error: null }));
    case "fail":
      return update(q, a.key, ["uploading", "queued"], (it) => ({ ...it, status: "failed", error: a.error }));
    case "retry":
      return update(q, a.key, ["failed"], (it) => ({ ...it, status: "queued", progress: 0, error: null }));
    case "cancel":
      return without(q, a.key, ["queued", "uploading"]);
    case "remove":
      return without(q, a.key, ["queued", "uploading", "done", "failed"]);
    case "clear":
      return q.items.length === 0 && q.notice === null ? q : emptyQueue;
    case "dismiss-notice":
      return q.notice === null ? q : { ...q, notice: null };
  }
}

/** The files to start uploading now: the next waiting ones, up to `parallel` running at once. */
export function toStart(q: UploadQueue, parallel = PARALLEL_UPLOADS): string[] {
  const running = q.items.filter((it) => it.status === "uploading").length;
  const free = Math.max(0, parallel - running);
  return q.items.filter((it) => it.status === "queued").slice(0, free).map((it) => it.key);
}

/** Whether the message can go: every file uploaded, and some text or at least one file. */
export function canSend(q: UploadQueue, body: string): boolean {
  if (!q.items.every((it) => it.status === "done")) return false;
  return body.trim() !== "" || q.items.length > 0;
}

/** The uploads to attach, in the order the files were added. */
export function readyUploads(q: UploadQueue): Upload[] {
  return q.items.flatMap((it) => (it.status === "done" && it.upload ? [it.upload] : []));
}

/** Why Send is not available yet, for its tooltip and screen readers (null when it is). */
export function waitingFor(q: UploadQueue): string | null {
  const failed = q.items.filter((it) => it.status === "failed").length;
  if (failed > 0) return failed === 1 ? "A file failed to upload: retry or remove it" : `${failed} files failed to upload: retry or remove them`;
  const busy = q.items.filter((it) => it.status === "queued" || it.status === "uploading").length;
  if (busy > 0) return busy === 1 ? "Waiting for a file to upload" : `Waiting for ${busy} files to upload`;
  return null;
}
