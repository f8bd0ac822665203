import { describe, expect, it } from "vitest";
import type { Contact } from "../../api/types";
import { alice, bob, file, msg, photo } from "../../test/fakes";
import { contactLabel, contactsReducer, previewText, totalUnread, type ContactsState } from "./model";

const carol = { ...bob, id: 3, username: "carol", display_name: "Carol" };

function contact(user: typeof bob, room: number, lastSeq: number | null, unread = 0, minute = 0): Contact {
  return {
    user,
    room_id: room,
    last_message: lastSeq === null ? null : msg(room, lastSeq, user.id, { created_at: new Date(Date.UTC(2026, 0, 1, 12, minute)).toISOString() }),
    unread_count: unread,
    online: false,
  };
}

const base = (): ContactsState => contactsReducer({ contacts: [], status: "loading" }, {
  type: "loaded",
  contacts: [contact(bob, 10, 3, 1, 1), contact(carol, 11, 5, 0, 5), { ...contact(alice, 12, null), user: { ...alice, id: 9, display_name: "Zed" } }],
});

describe("contacts reducer", () => {
  it("sorts most recent conversation first, contacts without messages last", () => {
    expect(base().contacts.map((c) => c.room_id)).toEqual([11, 10, 12]);
  });

  it("moves a room to the top and counts unread on a message from the other person", () => {
    const m = msg(10, 4, bob.id, { created_at: new Date(Date.UTC(2026, 0, 1, 12, 9)).toISOString() });
    const s = contactsReducer(base(), { type: "message", message: m, unread: true });
    expect(s.contacts.map((c) => c.room_id)).toEqual([10, 11, 12]);
    expect(s.contacts[0]?.unread_count).toBe(2);
    expect(s.contacts[0]?.last_message?.seq).toBe(4);
    expect(totalUnread(s.contacts)).toBe(2);
  });

  it("does not count our own messages, nor the same seq twice", () => {
    const m = msg(10, 4, alice.id, { created_at: new Date(Date.UTC(2026, 0, 1, 12, 9)).toISOString() });
    let s = contactsReducer(base(), { type: "message", message: m, unread: false });
    expect(s.contacts[0]?.unread_count).toBe(1);
    const again = contactsReducer(s, { type: "message", message: m, unread: true });
    expect(again).toBe(s);
    s = contactsReducer(s, { type: "message", message: msg(10, 2, bob.id), unread: true });
    expect(s.contacts[0]?.last_message?.seq).toBe(4);
  });

  it("shows the new text of an edited last message, and a deleted one as deleted", () => {
    const start = base();
    const last = start.contacts.find((c) => c.room_id === 10)?.last_message;
    if (!last) throw new Error("no last message");
    const edited = { ...last, body: "new text", edited_at: "2026-01-01T12:30:00Z", change_seq: 2 };
    let s = contactsReducer(start, { type: "updated", message: edited });
    expect(s.contacts.find((c) => c.room_id === 10)?.last_message?.body).toBe("new text");
    // An older version arriving late changes nothing; nor does a change to an earlier message.
    expect(contactsReducer(s, { type: "updated", message: { ...last, change_seq: 1 } })).toBe(s);
    expect(contactsReducer(s, { type: "updated", message: msg(10, 1, bob.id, { change_seq: 9 }) })).toBe(s);
    s = contactsReducer(s, { type: "updated", message: { ...edited, body: "", deleted_at: "2026-01-01T12:40:00Z", change_seq: 3 } });
    const c = s.contacts.find((x) => x.room_id === 10);
    expect(c?.last_message && previewText(c.last_message)).toBe("message deleted");
    expect(c && contactLabel(c, alice.id, false)).toContain("last message: message deleted");
  });

  it("clears unread when we read up to the newest message", () => {
    const s = contactsReducer(base(), { type: "own-read", roomId: 10, upTo: 3 });
    expect(s.contacts.find((c) => c.room_id === 10)?.unread_count).toBe(0);
  });

  it("updates presence", () => {
    const s = contactsReducer(base(), { type: "presence", userId: carol.id, online: true });
    expect(s.contacts.find((c) => c.user.id === carol.id)?.online).toBe(true);
    expect(contactsReducer(s, { type: "presence", userId: carol.id, online: true })).toBe(s);
  });

  it("adds a new contact without duplicating an existing one", () => {
    const s = contactsReducer(base(), { type: "added", contact: contact(bob, 10, 3, 1, 1) });
    expect(s.contacts.filter((c) => c.user.id === bob.id)).toHaveLength(1);
  });
});

describe("contactLabel", () => {
  const last = (sender: number, body: string, extra = {}) => msg(10, 4, sender, { body, ...extra });
  const c = (over: Partial<Contact>): Contact => ({ user: bob, room_id: 10, last_message: null, unread_count: 0, online: false, ...over });

  it("names the last message without a stray space, from the other person or from you", () => {
    const theirs = contactLabel(c({ last_message: last(bob.id, "Hi there"), unread_count: 1, online: true }), alice.id, false);
    const mine = contactLabel(c({ last_message: last(alice.id, "See you") }), alice.id, false);
    expect(theirs).toBe("Bob, online, 1 unread message, last message: Hi there");
    expect(mine).toBe("Bob, offline, last message from you: See you");
    for (const label of [theirs, mine]) expect(label).not.toMatch(/ [:,]/u);
  });

  it("says when there is nothing yet, when they type, and when a message was deleted", () => {
    expect(contactLabel(c({ unread_count: 3 }), alice.id, true)).toBe("Bob, offline, 3 unread messages, typing, no messages yet");
    const deleted = last(bob.id, "", { deleted_at: "2026-01-01T12:00:00Z" });
    expect(contactLabel(c({ last_message: deleted }), alice.id, false)).toBe("Bob, offline, last message: message deleted");
  });

  it("cuts a long message at 80 characters, never inside an emoji, and folds line breaks", () => {
    const body = `${"a".repeat(79)}😀😀 tail`;
    const label = contactLabel(c({ last_message: last(bob.id, body) }), alice.id, false);
    expect(label.endsWith(`: ${"a".repeat(79)}😀…`)).toBe(true);
    expect(contactLabel(c({ last_message: last(bob.id, "one\n\ntwo") }), alice.id, false)).toBe("Bob, offline, last message: one two");
  });
});

describe("previews of messages with attachments", () => {
  const last = (extra: Parameters<typeof msg>[3]) => msg(10, 4, bob.id, extra);
  const c = (m: ReturnType<typeof msg>): Contact => ({ user: bob, room_id: 10, last_message: m, unread_count: 0, online: false });

  it("shows the text when there is any, else what the message carries", () => {
    expect(previewText(last({ body: "Our new flat 🏡", attachments: [photo()] }))).toBe("Our new flat 🏡");
    expect(previewText(last({ body: "", attachments: [photo()] }))).toBe("🖼 Photo");
    expect(previewText(last({ body: "", attachments: [photo(), photo(), photo()] }))).toBe("🖼 3 photos");
    expect(previewText(last({ body: "", attachments: [file("Lease agreement.pdf")] }))).toBe("📎 Lease agreement.pdf");
    expect(previewText(last({ body: "", attachments: [file("a.pdf"), photo()] }))).toBe("📎 a.pdf and 1 more");
  });

  it("says a deleted message was deleted, whatever it carried", () => {
    expect(previewText(last({ body: "", attachments: [], deleted_at: "2026-01-01T12:00:00Z" }))).toBe("message deleted");
  });

  it("names the photo in the row's accessible name", () => {
    expect(contactLabel(c(last({ body: "", attachments: [photo()] })), alice.id, false)).toBe("Bob, offline, last message: 🖼 Photo");
  });
});

describe("user_updated", () => {
  it("shows the new name in that user's row (and only theirs), re-sorted", () => {
    const s = contactsReducer(base(), { type: "user-updated", user: { ...bob, display_name: "Bobby Tables" } });
    expect(s.contacts.find((c) => c.user.id === bob.id)?.user.display_name).toBe("Bobby Tables");
    expect(s.contacts.find((c) => c.user.id === carol.id)?.user.display_name).toBe("Carol");
    expect(s.contacts.map((c) => c.room_id)).toEqual([11, 10, 12]);
  });

  it("changes nothing for a user not in the list, or a name that did not change", () => {
    const b = base();
    expect(contactsReducer(b, { type: "user-updated", user: { ...bob, id: 77, display_name: "X" } })).toBe(b);
    expect(contactsReducer(b, { type: "user-updated", user: bob })).toBe(b);
  });

  it("shows a deleted account as Deleted user", () => {
    const online = contactsReducer(base(), { type: "presence", userId: carol.id, online: true });
    const s = contactsReducer(online, {
      type: "user-updated",
      user: { ...carol, username: `~deleted-${carol.id}`, display_name: "Deleted user" },
    });
    const row = s.contacts.find((c) => c.user.id === carol.id);
    expect(row?.user.display_name).toBe("Deleted user");
    expect(row?.user.username).toBe("~deleted-3");
    expect(row?.online).toBe(false);
  });
});
