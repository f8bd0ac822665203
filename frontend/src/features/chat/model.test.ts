import { describe, expect, it } from "vitest";
import { msg } from "../../test/fakes";
import type { Outgoing } from "../../lib/socket";
import { buildItems, groupItems, mergeMessages } from "./model";

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
