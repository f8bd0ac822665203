import { describe, expect, it } from "vitest";
import type { Upload } from "../../api/types";
import { pastedFiles } from "./components/Composer";
import { pastedName } from "./hooks/useUploads";
import { canSend, emptyQueue, queueReducer, readyUploads, toStart, waitingFor, type NewFile, type QueueAction, type UploadQueue } from "./uploadQueue";

const f = (key: string, name = `${key}.jpg`): NewFile => ({ key, name, size: 1000, type: "image/jpeg" });
const upload = (id: string): Upload => ({
  id,
  name: `${id}.jpg`,
  content_type: "image/jpeg",
  size: 1000,
  sha256: "c".repeat(64),
  width: 10,
  height: 10,
  url: `/api/files/${id}`,
  thumbnail_url: `/api/files/${id}/thumbnail`,
});
const run = (q: UploadQueue, ...actions: QueueAction[]) => actions.reduce(queueReducer, q);
const statuses = (q: UploadQueue) => q.items.map((it) => `${it.key}:${it.status}`);

describe("the upload queue", () => {
  it("adds files as waiting, starts at most three at once, in the order added", () => {
    const q = run(emptyQueue, { type: "add", files: [f("a"), f("b"), f("c"), f("d")] });
    expect(statuses(q)).toEqual(["a:queued", "b:queued", "c:queued", "d:queued"]);
    expect(toStart(q)).toEqual(["a", "b", "c"]);
    const started = run(q, { type: "start", key: "a" }, { type: "start", key: "b" });
    expect(toStart(started)).toEqual(["c"]);
    const full = run(started, { type: "start", key: "c" });
    expect(toStart(full)).toEqual([]);
    // One finishing frees a place for the next.
    expect(toStart(run(full, { type: "done", key: "a", upload: upload("a") }))).toEqual(["d"]);
  });

  it("reports progress in whole percents, forward only", () => {
    let q = run(emptyQueue, { type: "add", files: [f("a")] }, { type: "start", key: "a" });
    q = run(q, { type: "progress", key: "a", fraction: 0.256 });
    expect(q.items[0]?.progress).toBe(0.25);
    // The same percent again, or less, changes nothing (no render).
    expect(run(q, { type: "progress", key: "a", fraction: 0.259 })).toBe(q);
    expect(run(q, { type: "progress", key: "a", fraction: 0.1 })).toBe(q);
    // Progress for a file that is not uploading is ignored.
    const waiting = run(emptyQueue, { type: "add", files: [f("b")] });
    expect(run(waiting, { type: "progress", key: "b", fraction: 0.5 })).toBe(waiting);
  });

  it("keeps what the server stored once done; the message can go when all are done", () => {
    let q = run(emptyQueue, { type: "add", files: [f("a"), f("b")] }, { type: "start", key: "a" }, { type: "start", key: "b" });
    expect(canSend(q, "hello")).toBe(false);
    expect(waitingFor(q)).toBe("Waiting for 2 files to upload");
    q = run(q, { type: "done", key: "b", upload: upload("B") });
    expect(canSend(q, "")).toBe(false);
    q = run(q, { type: "done", key: "a", upload: upload("A") });
    expect(q.items.map((it) => it.progress)).toEqual([1, 1]);
    expect(canSend(q, "")).toBe(true);
    expect(waitingFor(q)).toBeNull();
    // In the order the files were added, not the order they finished.
    expect(readyUploads(q).map((u) => u.id)).toEqual(["A", "B"]);
  });

  it("needs text or a file to send", () => {
    expect(canSend(emptyQueue, "")).toBe(false);
    expect(canSend(emptyQueue, "   ")).toBe(false);
    expect(canSend(emptyQueue, "hi")).toBe(true);
  });

  it("marks a failure with its reason; retry puts it back in line; it blocks sending until retried or removed", () => {
    let q = run(emptyQueue, { type: "add", files: [f("a"), f("b")] }, { type: "start", key: "a" }, { type: "start", key: "b" });
    q = run(q, { type: "done", key: "a", upload: upload("A") }, { type: "fail", key: "b", error: "Too large: the limit is 4 MB" });
    expect(statuses(q)).toEqual(["a:done", "b:failed"]);
    expect(q.items[1]?.error).toBe("Too large: the limit is 4 MB");
    expect(canSend(q, "caption")).toBe(false);
    expect(waitingFor(q)).toBe("A file failed to upload: retry or remove it");
    const retried = run(q, { type: "retry", key: "b" });
    expect(statuses(retried)).toEqual(["a:done", "b:queued"]);
    expect(retried.items[1]).toMatchObject({ error: null, progress: 0 });
    expect(toStart(retried)).toEqual(["b"]);
    const removed = run(q, { type: "remove", key: "b" });
    expect(canSend(removed, "")).toBe(true);
    expect(readyUploads(removed).map((u) => u.id)).toEqual(["A"]);
  });

  it("retry only applies to a failed upload, done only to a running one", () => {
    const q = run(emptyQueue, { type: "add", files: [f("a")] });
    expect(run(q, { type: "retry", key: "a" })).toBe(q);
    expect(run(q, { type: "done", key: "a", upload: upload("A") })).toBe(q);
    expect(run(q, { type: "start", key: "zzz" })).toBe(q);
  });

  it("cancel takes a running or waiting upload out of the tray, but not a finished one", () => {
    let q = run(emptyQueue, { type: "add", files: [f("a"), f("b"), f("c")] }, { type: "start", key: "a" });
    q = run(q, { type: "cancel", key: "a" }, { type: "cancel", key: "c" });
    expect(statuses(q)).toEqual(["b:queued"]);
    const done = run(q, { type: "start", key: "b" }, { type: "done", key: "b", upload: upload("B") });
    expect(run(done, { type: "cancel", key: "b" })).toBe(done);
    expect(run(done, { type: "remove", key: "b" }).items).toEqual([]);
    // A late answer for a cancelled upload changes nothing.
    expect(run(q, { type: "done", key: "a", upload: upload("A") })).toBe(q);
  });

  it("takes at most ten files and says so when more are offered", () => {
    const eight = run(emptyQueue, { type: "add", files: Array.from({ length: 8 }, (_, i) => f(`k${i}`)) });
    expect(eight.notice).toBeNull();
    const q = run(eight, { type: "add", files: [f("x"), f("y"), f("z")] });
    expect(q.items).toHaveLength(10);
    expect(q.items.map((it) => it.key).slice(-2)).toEqual(["x", "y"]);
    expect(q.notice).toBe("You can send up to 10 files in one message: 1 file was not added.");
    const more = run(q, { type: "add", files: [f("p"), f("q")] });
    expect(more.items).toHaveLength(10);
    expect(more.notice).toBe("You can send up to 10 files in one message: 2 files were not added.");
    // Removing one makes room again.
    const room = run(more, { type: "remove", key: "k0" }, { type: "add", files: [f("p")] });
    expect(room.items).toHaveLength(10);
    expect(room.notice).toBeNull();
    expect(run(q, { type: "dismiss-notice" }).notice).toBeNull();
  });

  it("says when folders were skipped", () => {
    const q = run(emptyQueue, { type: "add", files: [f("a")], skipped: 2 });
    expect(q.items).toHaveLength(1);
    expect(q.notice).toBe("Folders can't be sent: 2 folders were skipped.");
  });

  it("clears everything once the message is sent", () => {
    const q = run(emptyQueue, { type: "add", files: [f("a")] }, { type: "start", key: "a" }, { type: "done", key: "a", upload: upload("A") });
    expect(run(q, { type: "clear" })).toEqual(emptyQueue);
    expect(run(emptyQueue, { type: "clear" })).toBe(emptyQueue);
  });
});

describe("pasted pictures", () => {
  const at = new Date(2026, 0, 14, 9, 5, 7);
  const data = (files: File[], types = ["Files"]) => ({ files: files as unknown as FileList, types });

  it("names a pasted screenshot by when it was pasted, and keeps a real name", () => {
    expect(pastedName({ name: "image.png", type: "image/png" }, at)).toBe("Pasted image 2026-01-14 09.05.07.png");
    expect(pastedName({ name: "", type: "image/jpeg" }, at)).toBe("Pasted image 2026-01-14 09.05.07.jpg");
    expect(pastedName({ name: "holiday.png", type: "image/png" }, at)).toBe("holiday.png");
  });

  it("attaches the files of a paste, but pastes text copied with a picture of itself as text", () => {
    const shot = new File([new Uint8Array([1, 2, 3])], "image.png", { type: "image/png" });
    const [renamed] = pastedFiles(data([shot]), at);
    expect(renamed?.name).toBe("Pasted image 2026-01-14 09.05.07.png");
    expect(renamed?.type).toBe("image/png");
    expect(renamed?.size).toBe(3);
    expect(pastedFiles(data([shot], ["text/plain", "text/html", "Files"]), at)).toEqual([]);
    expect(pastedFiles(data([], ["text/plain"]), at)).toEqual([]);
  });
});
