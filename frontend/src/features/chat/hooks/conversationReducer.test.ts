import { describe, expect, it } from "vitest";
import { alice, bob } from "../../../test/fakes";
import { conversationReducer, type ConversationState } from "./useConversation";

const state = (): ConversationState => ({
  status: "ready",
  room: { id: 7, created_at: "2026-01-01T00:00:00Z", last_seq: 0, last_change_seq: 0, members: [alice, bob] } as ConversationState["room"],
  messages: [],
  heldUpdates: [],
  hasMore: false,
  loadingOlder: false,
  pending: [],
  peerReadUpTo: 0,
  peerTyping: false,
  peerOnline: true,
});

describe("conversation: user_updated", () => {
  it("renames the member it names, so the header shows the new name", () => {
    const s = conversationReducer(state(), { type: "user-updated", user: { ...bob, display_name: "Bobby" } });
    expect(s.room?.members.map((u) => u.display_name)).toEqual(["Alice", "Bobby"]);
  });

  it("leaves the state alone for someone else or before the room loaded", () => {
    const s = state();
    expect(conversationReducer(s, { type: "user-updated", user: { ...bob, id: 99 } })).toBe(s);
    const loading = { ...s, status: "loading" as const, room: null };
    expect(conversationReducer(loading, { type: "user-updated", user: bob })).toBe(loading);
  });
});
