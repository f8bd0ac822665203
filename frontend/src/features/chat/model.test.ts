import { describe, expect, it } from "vitest";
import type { Message } from "../../api/types";
import { file, msg, photo } from "../../test/fakes";
import type { Outgoing } from "../../lib/socket";
import {
  applyUpdates,
  buildItems,
  excerpt,
  groupItems,
  keepNewest,
  lastOwnEditable,
  mergeMessages,
  reactionChips,
  replyPreview,
} from "./model";

const ME = 1;
const PEER = 2;

function at(day: number, h: number, m: number): string {
  return new Date(2026, 0, day, h, m).toISOString();
}

describe("mergeMessages", () => {
  it("keeps ascending seq with each seq once", () => {
    const a = [msg(7, 1, 2), msg(7, 2, 1)];
    const merged = mergeMessages(a, [msg(7, 4, 2), msg(7, 2, 1, { id: a[1]?.id }), msg(7, 3, 2)]);
    expect(merged.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
  });

  it("prepends an older page", () => {
    const merged = mergeMessages([msg(7, 51, 2), msg(7, 52, 2)], [msg(7, 49, 2), msg(7, 50, 1)]);
    expect(merged.map((m) => m.seq)).toEqual([49, 50, 51, 52]);
  });

  it("returns the same array when nothing is new (no re-render)", () => {
    const a = [msg(7, 1, 2)];
    expect(mergeMessages(a, [a[0]!])).toBe(a);
    expect(mergeMessages(a, [])).toBe(a);
  });
});

describe("merging by change_seq", () => {
  const original = msg(7, 3, PEER, { id: 30, body: "first", change_seq: 0 });
  const edited = { ...original, body: "second", edited_at: "2026-01-01T12:05:00Z", change_seq: 4 };
  const reacted = { ...edited, reactions: [{ emoji: "👍", user_ids: [ME] }], change_seq: 6 };

  it("keeps the version with the highest change_seq, in whatever order they come", () => {
    expect(mergeMessages([original], [edited])[0]?.body).toBe("second");
    // A replayed `message` older than the update already applied changes nothing.
    const withUpdate = [reacted];
    expect(mergeMessages(withUpdate, [original])).toBe(withUpdate);
    expect(mergeMessages(withUpdate, [edited])).toBe(withUpdate);
    // An older history page does not undo a newer version either.
    expect(mergeMessages([reacted], [msg(7, 1, PEER), original]).map((m) => [m.seq, m.change_seq])).toEqual([
      [1, 0],
      [3, 6],
    ]);
  });

  it("lets a tombstone replace the message (same seq, newer change)", () => {
    const tomb = { ...original, body: "", deleted_at: "2026-01-01T12:06:00Z", change_seq: 7 };
    const merged = mergeMessages([reacted], [tomb]);
    expect(merged).toHaveLength(1);
    expect(merged[0]?.deleted_at).not.toBeNull();
  });

  it("applies updates to loaded messages only, handing back the rest", () => {
    const list = [msg(7, 2, ME, { id: 20 }), original];
    const other = msg(7, 1, ME, { id: 10, change_seq: 2 });
    const { messages, unplaced } = applyUpdates(list, [edited, other]);
    expect(messages.map((m) => m.body)).toEqual(["message 2", "second"]);
    expect(messages).not.toBe(list);
    expect(unplaced).toEqual([other]);
    // Nothing newer: the same array, so nothing re-renders.
    expect(applyUpdates(messages, [original]).messages).toBe(messages);
  });

  it("keeps only the newest held change per message", () => {
    expect(keepNewest([edited], [original, reacted]).map((m) => m.change_seq)).toEqual([6]);
    expect(keepNewest([reacted], [edited]).map((m) => m.change_seq)).toEqual([6]);
  });
});

describe("replies and reactions", () => {
  const original = msg(7, 1, PEER, { id: 10, body: "  Where shall we\n meet   tomorrow?  " });
  const answer = msg(7, 2, ME, { id: 11, body: "At the station", reply_to: 10 });

  it("quotes the original in one line, or says it is deleted or older than what is loaded", () => {
    const byId = new Map([[10, original]]);
    expect(replyPreview(10, byId, ME)).toEqual({ kind: "message", id: 10, senderId: PEER, own: false, excerpt: "Where shall we meet tomorrow?" });
    expect(replyPreview(10, new Map([[10, { ...original, body: "", deleted_at: "2026-01-01T13:00:00Z" }]]), ME)).toEqual({ kind: "deleted", id: 10 });
    expect(replyPreview(99, byId, ME)).toEqual({ kind: "older", id: 99 });
  });

  it("cuts a long excerpt on a character boundary, never inside an emoji", () => {
    expect(excerpt("🎉".repeat(5), 3)).toBe("🎉🎉🎉…");
  });

  it("builds rows with the quote, the edit time and the reactions (ours marked)", () => {
    const edited = { ...answer, edited_at: "2026-01-01T12:10:00Z", change_seq: 3, reactions: [{ emoji: "❤️", user_ids: [PEER, ME] }, { emoji: "😂", user_ids: [PEER] }] };
    const [, row] = buildItems([original, edited], [], ME, 0);
    expect(row?.id).toBe(11);
    expect(row?.replyTo).toMatchObject({ kind: "message", id: 10 });
    expect(row?.editedAt).toBe("2026-01-01T12:10:00Z");
    expect(row?.reactions).toEqual([
      { emoji: "❤️", userIds: [PEER, ME], mine: true },
      { emoji: "😂", userIds: [PEER], mine: false },
    ]);
  });

  it("shows a deleted message without its text, quote or reactions", () => {
    const tomb = { ...answer, body: "", deleted_at: "2026-01-01T13:00:00Z", change_seq: 5 };
    const [row] = buildItems([tomb], [], ME, 0);
    expect(row).toMatchObject({ deleted: true, replyTo: null, reactions: [], editedAt: null });
  });

  it("quotes the original in a reply still waiting for its ack", () => {
    const p = { item: { client_msg_id: "x", room_id: 7, body: "ok", created_at: at(1, 12, 0), reply_to: 10 }, failed: null };
    const rows = buildItems([original], [p], ME, 0);
    expect(rows[1]?.replyTo).toMatchObject({ kind: "message", id: 10 });
  });

  it("drops reactions nobody holds any more", () => {
    expect(reactionChips({ reactions: [{ emoji: "👍", user_ids: [] }] }, ME)).toEqual([]);
  });

  it("finds our last message that can be edited (Up in an empty box)", () => {
    const tomb = msg(7, 3, ME, { id: 12, body: "", deleted_at: "2026-01-01T13:00:00Z" });
    expect(lastOwnEditable([original, answer, tomb, msg(7, 4, PEER)], ME)?.id).toBe(11);
    expect(lastOwnEditable([original], ME)).toBeNull();
  });
});

describe("buildItems", () => {
  const pending = (id: string, body = "p"): { item: Outgoing; failed: string | null } => ({
    item: { client_msg_id: id, room_id: 7, body, created_at: at(1, 12, 0) },
    failed: null,
  });

  it("marks own messages sent, or read up to the peer's marker", () => {
    const items = buildItems([msg(7, 1, ME), msg(7, 2, PEER), msg(7, 3, ME)], [], ME, 1);
    expect(items.map((i) => [i.seq, i.own, i.state])).toEqual([
      [1, true, "read"],
      [2, false, null],
      [3, true, "sent"],
    ]);
  });

  it("shows unacknowledged sends after the stored messages, as sending or failed", () => {
    const p = [pending("a"), { ...pending("b"), failed: "too long" }];
    const items = buildItems([msg(7, 1, PEER)], p, ME, 0);
    expect(items.map((i) => [i.seq, i.state])).toEqual([
      [1, null],
      [null, "sending"],
      [null, "failed"],
    ]);
  });

  it("never shows a send twice once the stored copy is there (dedupe by client_msg_id)", () => {
    const stored = msg(7, 5, ME, { client_msg_id: "a" });
    const items = buildItems([stored], [pending("a")], ME, 0);
    expect(items).toHaveLength(1);
    expect(items[0]?.state).toBe("sent");
  });

  it("carries the attachments in order, none for a deleted message, and the uploads of a send still waiting", () => {
    const pics = [photo(4032, 3024), file("plan.pdf")];
    const p = { item: { ...pending("w", "").item, attachments: [photo()] }, failed: null };
    const items = buildItems(
      [msg(7, 1, PEER, { body: "", attachments: pics }), msg(7, 2, PEER, { body: "", attachments: [photo()], deleted_at: at(1, 13, 0) }), msg(7, 3, PEER)],
      [p],
      ME,
      0,
    );
    expect(items.map((i) => i.attachments.length)).toEqual([2, 0, 0, 1]);
    expect(items[0]?.attachments.map((a) => a.name)).toEqual(["IMG_0001.jpg", "plan.pdf"]);
    // A server from before attachments sends none at all.
    const { attachments: _gone, ...old } = msg(7, 4, PEER);
    expect(buildItems([old as Message], [], ME, 0)[0]?.attachments).toEqual([]);
  });

  it("quotes a message with only photos or a file by what it carries", () => {
    const byId = new Map([
      [1, msg(7, 1, PEER, { id: 1, body: "", attachments: [photo()] })],
      [2, msg(7, 2, PEER, { id: 2, body: "", attachments: [file("minutes.docx", "application/octet-stream")] })],
      [3, msg(7, 3, PEER, { id: 3, body: "with a caption", attachments: [photo()] })],
    ]);
    expect(replyPreview(1, byId, ME)).toMatchObject({ kind: "message", excerpt: "🖼 Photo" });
    expect(replyPreview(2, byId, ME)).toMatchObject({ kind: "message", excerpt: "📎 minutes.docx" });
    expect(replyPreview(3, byId, ME)).toMatchObject({ kind: "message", excerpt: "with a caption" });
  });
});

describe("groupItems", () => {
  const item = (seq: number, sender: number, createdAt: string) =>
    buildItems([msg(7, seq, sender, { created_at: createdAt })], [], ME, 0)[0]!;

  it("groups consecutive messages of one sender within a day", () => {
    const days = groupItems(
      [item(1, PEER, at(5, 10, 0)), item(2, PEER, at(5, 10, 1)), item(3, ME, at(5, 10, 2)), item(4, ME, at(5, 10, 3)), item(5, PEER, at(5, 10, 4))],
      new Date(2026, 0, 5, 18, 0),
    );
    expect(days).toHaveLength(1);
    expect(days[0]?.label).toBe("Today");
    expect(days[0]?.groups.map((g) => [g.own, g.items.map((i) => i.seq)])).toEqual([
      [false, [1, 2]],
      [true, [3, 4]],
      [false, [5]],
    ]);
  });

  it("starts a new day section and a new group at midnight", () => {
    const days = groupItems([item(1, PEER, at(4, 23, 58)), item(2, PEER, at(5, 0, 1))], new Date(2026, 0, 5, 9, 0));
    expect(days.map((d) => d.label)).toEqual(["Yesterday", "Today"]);
    expect(days.map((d) => d.groups.length)).toEqual([1, 1]);
  });

  it("splits a sender's run after a long pause", () => {
    const days = groupItems([item(1, PEER, at(5, 10, 0)), item(2, PEER, at(5, 10, 30))], new Date(2026, 0, 5, 18, 0));
    expect(days[0]?.groups).toHaveLength(2);
  });

  it("is empty for no messages", () => {
    expect(groupItems([])).toEqual([]);
  });
});
