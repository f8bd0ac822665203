import { beforeEach, describe, expect, it } from "vitest";
import { alice, bob, FakeNetwork, FakeTimers, msg } from "../test/fakes";
import type { RoomState } from "./protocol";
import { backoffDelay, ChatSocket, missedChanges, type SocketEvent } from "./socket";

let net: FakeNetwork;
let timers: FakeTimers;
let sock: ChatSocket;
let events: SocketEvent[];

function messages(): number[] {
  return events.flatMap((e) => (e.type === "message" ? [e.message.seq] : []));
}

function connectReady(rooms: RoomState[] = [{ room_id: 7, last_seq: 3, read_up_to: 3 }]) {
  net.last.open();
  net.last.receive({ type: "ready", user: alice, rooms });
}

beforeEach(() => {
  net = new FakeNetwork();
  timers = new FakeTimers();
  sock = new ChatSocket({ url: "ws://test/api/ws", factory: net.factory, timers, baseDelayMs: 500, maxDelayMs: 8000 });
  events = [];
  sock.subscribe((e) => events.push(e));
  sock.start("tok-1");
});

describe("connecting", () => {
  it("authenticates with the first frame, never in the URL", () => {
    expect(net.last.url).toBe("ws://test/api/ws");
    expect(net.last.url).not.toContain("tok-1");
    net.last.open();
    expect(net.last.sent[0]).toEqual({ type: "auth", token: "tok-1" });
    expect(sock.getState().status).toBe("connecting");
    net.last.receive({ type: "ready", user: alice, rooms: [] });
    expect(sock.getState().status).toBe("open");
    expect(sock.user).toEqual(alice);
  });

  it("ignores malformed frames", () => {
    net.last.open();
    net.last.receive("not json");
    net.last.receive(JSON.stringify({ type: "message", message: { id: "x" } }));
    net.last.receive(JSON.stringify({ type: "bogus" }));
    expect(events.filter((e) => e.type !== "state")).toEqual([]);
  });

  it("stops and reports when the server says unauthorized", () => {
    net.last.open();
    net.last.receive({ type: "error", code: "unauthorized", message: "token revoked" });
    expect(events.some((e) => e.type === "auth-failed")).toBe(true);
    expect(sock.getState().status).toBe("idle");
    timers.advance(60_000);
    expect(net.sockets).toHaveLength(1);
  });
});

describe("reconnecting", () => {
  it("backs off exponentially with jitter, capped", () => {
    const r0 = () => 0;
    const r1 = () => 1;
    expect(backoffDelay(0, 500, 8000, r0)).toBe(250);
    expect(backoffDelay(0, 500, 8000, r1)).toBe(500);
    expect(backoffDelay(3, 500, 8000, r1)).toBe(4000);
    expect(backoffDelay(3, 500, 8000, r0)).toBe(2000);
    expect(backoffDelay(10, 500, 8000, r1)).toBe(8000);
    expect(backoffDelay(100, 500, 8000, r0)).toBe(4000);
  });

  it("reconnects after a drop, with growing delays, and resets once a connection stayed up", () => {
    connectReady();
    timers.advance(10_000); // a long-lived connection
    net.last.serverClose();
    expect(sock.getState()).toMatchObject({ status: "waiting", attempt: 1 });
    timers.advance(374);
    expect(net.sockets).toHaveLength(1);
    timers.advance(1); // 500 * (0.5 + 0.5 * 0.5) = 375
    expect(net.sockets).toHaveLength(2);
    net.last.serverClose(); // failed attempt before open
    timers.advance(749);
    expect(net.sockets).toHaveLength(2);
    timers.advance(1); // 1000 * 0.75
    expect(net.sockets).toHaveLength(3);
    net.last.serverClose();
    timers.advance(1500);
    expect(net.sockets).toHaveLength(4);
    connectReady();
    expect(sock.getState().status).toBe("open");
    // dropped right after ready: still backing off
    net.last.serverClose();
    timers.advance(2999);
    expect(net.sockets).toHaveLength(4);
    timers.advance(1); // 4000 * 0.75
    expect(net.sockets).toHaveLength(5);
    connectReady();
    timers.advance(10_000);
    net.last.serverClose();
    timers.advance(375);
    expect(net.sockets).toHaveLength(6);
  });

  it("reconnectNow skips the wait", () => {
    connectReady();
    net.last.serverClose();
    sock.reconnectNow();
    expect(net.sockets).toHaveLength(2);
  });

  it("networkBack replaces a connection that lived through an outage and resends what is unacknowledged", () => {
    sock.watch(7);
    connectReady();
    const old = net.last;
    const item = sock.send(7, "typed while offline");
    sock.networkBack();
    expect(old.closed).not.toBeNull();
    expect(net.sockets).toHaveLength(2);
    expect(sock.getState().status).toBe("connecting");
    connectReady([{ room_id: 7, last_seq: 5, read_up_to: 3 }]);
    expect(net.last.sentOf("send").map((f) => f.client_msg_id)).toEqual([item.client_msg_id]);
    expect(net.last.sentOf("sync")).toEqual([{ type: "sync", room_id: 7, after: 3 }]);
  });

  it("networkBack does nothing when logged out", () => {
    sock.stop();
    sock.networkBack();
    expect(net.sockets).toHaveLength(1);
    expect(sock.getState().status).toBe("idle");
  });

  it("treats a silent connection as dead after a ping goes unanswered", () => {
    const s = new ChatSocket({ url: "u", factory: net.factory, timers, pingIntervalMs: 1000, pongTimeoutMs: 500 });
    s.start("t");
    const first = net.last;
    connectReady();
    timers.advance(1000);
    expect(first.sentOf("ping")).toHaveLength(1);
    first.receive({ type: "pong" });
    timers.advance(1000);
    expect(first.sentOf("ping")).toHaveLength(2);
    timers.advance(500);
    expect(first.closed).not.toBeNull();
    expect(s.getState().status).toBe("waiting");
  });

  it("gives up on an attempt that never gets ready", () => {
    net.last.open();
    timers.advance(10_000);
    expect(net.sockets[0]?.closed).not.toBeNull();
    expect(sock.getState().status).toBe("waiting");
  });

  it("stop() closes and never reconnects", () => {
    connectReady();
    sock.stop();
    expect(net.last.closed?.code).toBe(1000);
    timers.advance(60_000);
    expect(net.sockets).toHaveLength(1);
    expect(sock.getState().status).toBe("idle");
  });
});

describe("sync after reconnect", () => {
  it("syncs every watched room from its last seen seq, and skips unwatched backlogs", () => {
    sock.watch(7);
    connectReady([
      { room_id: 7, last_seq: 3, read_up_to: 3 },
      { room_id: 8, last_seq: 10, read_up_to: 10 },
    ]);
    net.last.receive({ type: "message", message: msg(7, 4, 2) });
    net.last.serverClose();
    timers.advance(1000);
    connectReady([
      { room_id: 7, last_seq: 9, read_up_to: 3 },
      { room_id: 8, last_seq: 12, read_up_to: 10 },
    ]);
    expect(net.last.sentOf("sync")).toEqual([{ type: "sync", room_id: 7, after: 4 }]);
    for (const seq of [5, 6, 7, 8, 9]) net.last.receive({ type: "message", message: msg(7, seq, 2) });
    net.last.receive({ type: "synced", room_id: 7, last_seq: 9 });
    expect(messages()).toEqual([4, 5, 6, 7, 8, 9]);
    expect(events.filter((e) => e.type === "ready").map((e) => e.type === "ready" && e.reconnect)).toEqual([false, true]);
    // room 8 moved on without replay
    net.last.receive({ type: "message", message: msg(8, 13, 2) });
    expect(messages()).toEqual([4, 5, 6, 7, 8, 9, 13]);
  });

  it("starts a watched room's sync after what REST history showed", () => {
    sock.watch(7);
    sock.noteSeen(7, 20);
    connectReady([{ room_id: 7, last_seq: 22, read_up_to: 20 }]);
    expect(net.last.sentOf("sync")).toEqual([{ type: "sync", room_id: 7, after: 20 }]);
  });
});

describe("changes to messages", () => {
  const updated = (changeSeq: number, seq = 2) => ({
    type: "message_updated" as const,
    message: msg(7, seq, 2, { body: "edited", edited_at: "2026-01-01T12:10:00Z", change_seq: changeSeq }),
  });

  it("asks for changes only when ready's last_change_seq is above what was seen", () => {
    expect(missedChanges(null, 5)).toBeNull(); // a room new to the client: REST history is current
    expect(missedChanges(5, 5)).toBeNull();
    expect(missedChanges(5, undefined)).toBeNull(); // an older server
    expect(missedChanges(3, 5)).toBe(3);
  });

  it("passes message_updated on and tracks the room's last change_seq", () => {
    connectReady([{ room_id: 7, last_seq: 3, read_up_to: 3, last_change_seq: 2 }]);
    expect(sock.lastChangeSeq(7)).toBe(2);
    net.last.receive(updated(3));
    expect(sock.lastChangeSeq(7)).toBe(3);
    const e = events.filter((x) => x.type === "message-updated");
    expect(e).toHaveLength(1);
    expect(e[0]?.type === "message-updated" && e[0].message.body).toBe("edited");
  });

  it("after a reconnect syncs the changes missed, even with no new messages, and takes synced's last_change_seq", () => {
    sock.watch(7);
    connectReady([
      { room_id: 7, last_seq: 3, read_up_to: 3, last_change_seq: 2 },
      { room_id: 8, last_seq: 5, read_up_to: 5, last_change_seq: 1 },
    ]);
    net.last.receive(updated(3));
    net.last.serverClose();
    timers.advance(1000);
    connectReady([
      { room_id: 7, last_seq: 3, read_up_to: 3, last_change_seq: 6 },
      { room_id: 8, last_seq: 5, read_up_to: 5, last_change_seq: 4 },
    ]);
    // Room 8 is not on screen: nothing to replay; it starts again from the newest change.
    expect(net.last.sentOf("sync")).toEqual([{ type: "sync", room_id: 7, after: 3, changes_after: 3 }]);
    expect(sock.lastChangeSeq(8)).toBe(4);
    for (const c of [4, 5, 6]) net.last.receive(updated(c, c - 3));
    net.last.receive({ type: "synced", room_id: 7, last_seq: 3, last_change_seq: 6 });
    expect(sock.lastChangeSeq(7)).toBe(6);
    expect(events.filter((e) => e.type === "message-updated")).toHaveLength(4);
    expect(events.at(-1)).toEqual({ type: "synced", roomId: 7, lastSeq: 3, lastChangeSeq: 6 });
  });

  it("syncs new messages and changes together, and leaves changes_after out when none were missed", () => {
    sock.watch(7);
    connectReady([{ room_id: 7, last_seq: 3, read_up_to: 3, last_change_seq: 2 }]);
    net.last.serverClose();
    timers.advance(1000);
    connectReady([{ room_id: 7, last_seq: 5, read_up_to: 3, last_change_seq: 4 }]);
    expect(net.last.sentOf("sync")).toEqual([{ type: "sync", room_id: 7, after: 3, changes_after: 2 }]);
    net.last.serverClose();
    timers.advance(5000);
    connectReady([{ room_id: 7, last_seq: 7, read_up_to: 3, last_change_seq: 2 }]);
    expect(net.last.sentOf("sync")).toEqual([{ type: "sync", room_id: 7, after: 3 }]);
  });

  it("keeps a room watched from before the session started (a reload: the view mounts first)", () => {
    sock.stop();
    sock.watch(7);
    sock.start("tok-2");
    connectReady([{ room_id: 7, last_seq: 3, read_up_to: 3, last_change_seq: 2 }]);
    net.last.serverClose();
    timers.advance(1000);
    connectReady([{ room_id: 7, last_seq: 3, read_up_to: 3, last_change_seq: 5 }]);
    expect(net.last.sentOf("sync")).toEqual([{ type: "sync", room_id: 7, after: 3, changes_after: 2 }]);
  });

  it("sends reply_to with a reply, and again when resending it", () => {
    connectReady();
    sock.send(7, "Sure!", 42);
    expect(net.last.sentOf("send")[0]).toMatchObject({ room_id: 7, body: "Sure!", reply_to: 42 });
    net.last.serverClose();
    timers.advance(1000);
    connectReady();
    expect(net.last.sentOf("send")[0]).toMatchObject({ body: "Sure!", reply_to: 42 });
    sock.send(7, "plain");
    expect(net.last.sentOf("send")[1]).not.toHaveProperty("reply_to");
  });

  it("sends the ids of the attachments (the body may be empty), keeps the uploads for the view, and resends them", () => {
    connectReady();
    const up = (id: string) => ({
      id,
      name: `${id}.png`,
      content_type: "image/png",
      size: 10,
      sha256: "e".repeat(64),
      width: 4,
      height: 3,
      url: `/api/files/${id}`,
      thumbnail_url: `/api/files/${id}/thumbnail`,
    });
    const item = sock.send(7, "", undefined, [up("a1"), up("b2")]);
    expect(item.attachments?.map((a) => a.name)).toEqual(["a1.png", "b2.png"]);
    expect(net.last.sentOf("send")[0]).toEqual({ type: "send", room_id: 7, client_msg_id: item.client_msg_id, body: "", attachments: ["a1", "b2"] });
    net.last.serverClose();
    timers.advance(1000);
    connectReady();
    expect(net.last.sentOf("send")[0]).toMatchObject({ client_msg_id: item.client_msg_id, attachments: ["a1", "b2"] });
    sock.send(7, "no files", undefined, []);
    expect(net.last.sentOf("send")[1]).not.toHaveProperty("attachments");
  });
});

describe("dedupe and order", () => {
  it("drops a message whose seq was already delivered", () => {
    connectReady();
    const m = msg(7, 4, 2);
    net.last.receive({ type: "message", message: m });
    net.last.receive({ type: "message", message: m });
    net.last.receive({ type: "message", message: msg(7, 3, 2) });
    expect(messages()).toEqual([4]);
  });

  it("holds messages after a gap and fills it with sync", () => {
    connectReady();
    net.last.receive({ type: "message", message: msg(7, 6, 2) });
    expect(messages()).toEqual([]);
    timers.advance(800);
    expect(net.last.sentOf("sync")).toEqual([{ type: "sync", room_id: 7, after: 3 }]);
    net.last.receive({ type: "message", message: msg(7, 4, 2) });
    net.last.receive({ type: "message", message: msg(7, 5, 2) });
    expect(messages()).toEqual([4, 5, 6]);
    net.last.receive({ type: "message", message: msg(7, 6, 2) });
    net.last.receive({ type: "synced", room_id: 7, last_seq: 6 });
    expect(messages()).toEqual([4, 5, 6]);
  });

  it("does not sync when the gap closes by itself", () => {
    connectReady();
    net.last.receive({ type: "message", message: msg(7, 5, 2) });
    net.last.receive({ type: "message", message: msg(7, 4, 1) });
    timers.advance(5000);
    expect(net.last.sentOf("sync")).toEqual([]);
    expect(messages()).toEqual([4, 5]);
  });

  it("asks again when a sync left a gap open", () => {
    connectReady();
    net.last.receive({ type: "message", message: msg(7, 9, 2) });
    timers.advance(800);
    net.last.receive({ type: "message", message: msg(7, 4, 2) });
    net.last.receive({ type: "synced", room_id: 7, last_seq: 4 });
    expect(net.last.sentOf("sync")).toEqual([
      { type: "sync", room_id: 7, after: 3 },
      { type: "sync", room_id: 7, after: 4 },
    ]);
  });

  it("accepts messages of a room it has not heard of (a new contact)", () => {
    connectReady();
    net.last.receive({ type: "message", message: msg(99, 1, 2) });
    net.last.receive({ type: "message", message: msg(99, 2, 2) });
    expect(messages()).toEqual([1, 2]);
  });
});

describe("outbox", () => {
  it("sends at once when connected and clears on ack", () => {
    connectReady();
    const item = sock.send(7, "hi");
    expect(net.last.sentOf("send")).toEqual([{ type: "send", room_id: 7, client_msg_id: item.client_msg_id, body: "hi" }]);
    expect(sock.pending()).toHaveLength(1);
    const m = msg(7, 4, 1, { client_msg_id: item.client_msg_id, body: "hi" });
    net.last.receive({ type: "ack", client_msg_id: item.client_msg_id, message: m });
    expect(sock.pending()).toEqual([]);
    expect(events.find((e) => e.type === "ack")).toMatchObject({ item, message: m });
    expect(messages()).toEqual([4]);
  });

  it("queues while offline and sends once, in order, after ready", () => {
    connectReady();
    net.last.serverClose();
    const a = sock.send(7, "one");
    const b = sock.send(7, "two");
    expect(events.filter((e) => e.type === "pending")).toHaveLength(2);
    timers.advance(1000);
    connectReady();
    expect(net.last.sentOf("send").map((f) => f.client_msg_id)).toEqual([a.client_msg_id, b.client_msg_id]);
  });

  it("resends unacknowledged messages with the same client_msg_id after a drop", () => {
    connectReady();
    const a = sock.send(7, "lost ack");
    net.last.serverClose();
    timers.advance(1000);
    connectReady();
    expect(net.last.sentOf("send")).toEqual([{ type: "send", room_id: 7, client_msg_id: a.client_msg_id, body: "lost ack" }]);
    expect(net.sockets[0]?.sentOf("send")[0]?.client_msg_id).toBe(a.client_msg_id);
  });

  it("takes our own message replayed by sync as the ack (never twice on screen)", () => {
    sock.watch(7);
    connectReady();
    const a = sock.send(7, "hello");
    net.last.serverClose();
    timers.advance(1000);
    connectReady([{ room_id: 7, last_seq: 4, read_up_to: 3 }]);
    const stored = msg(7, 4, 1, { client_msg_id: a.client_msg_id, body: "hello" });
    net.last.receive({ type: "message", message: stored });
    // and the resend's ack arrives too
    net.last.receive({ type: "ack", client_msg_id: a.client_msg_id, message: stored });
    expect(messages()).toEqual([4]);
    expect(sock.pending()).toEqual([]);
  });

  it("reports a rejected message and lets it be retried", () => {
    connectReady();
    const a = sock.send(7, "x");
    net.last.receive({ type: "error", code: "validation_failed", message: "too long", client_msg_id: a.client_msg_id });
    expect(events.find((e) => e.type === "send-failed")).toMatchObject({ item: a, code: "validation_failed" });
    expect(sock.pending()).toEqual([]);
    sock.retry(a);
    expect(net.last.sentOf("send").map((f) => f.client_msg_id)).toEqual([a.client_msg_id, a.client_msg_id]);
  });

  it("keeps a rate-limited message queued and sends it again", () => {
    connectReady();
    const a = sock.send(7, "x");
    net.last.receive({ type: "error", code: "rate_limited", message: "slow down", client_msg_id: a.client_msg_id });
    expect(sock.pending()).toHaveLength(1);
    timers.advance(1000);
    expect(net.last.sentOf("send")).toHaveLength(2);
  });

  it("forgets the outbox on stop (log out)", () => {
    connectReady();
    sock.send(7, "x");
    sock.stop();
    expect(sock.pending()).toEqual([]);
  });
});

describe("read markers, typing, presence", () => {
  it("sends read markers forward only, and replays an offline one after ready", () => {
    connectReady([{ room_id: 7, last_seq: 5, read_up_to: 2 }]);
    sock.markRead(7, 4);
    sock.markRead(7, 3);
    expect(net.last.sentOf("read")).toEqual([{ type: "read", room_id: 7, up_to: 4 }]);
    net.last.serverClose();
    sock.markRead(7, 5);
    timers.advance(1000);
    connectReady([{ room_id: 7, last_seq: 5, read_up_to: 4 }]);
    expect(net.last.sentOf("read")).toEqual([{ type: "read", room_id: 7, up_to: 5 }]);
    expect(events.filter((e) => e.type === "read" && e.own).map((e) => e.type === "read" && e.upTo)).toEqual([4, 5]);
  });

  it("passes typing, read and presence of others through", () => {
    connectReady();
    net.last.receive({ type: "typing", room_id: 7, user_id: bob.id });
    net.last.receive({ type: "read", room_id: 7, user_id: bob.id, up_to: 3 });
    net.last.receive({ type: "presence", user_id: bob.id, online: false });
    expect(events.filter((e) => ["typing", "read", "presence"].includes(e.type))).toEqual([
      { type: "typing", roomId: 7, userId: 2 },
      { type: "read", roomId: 7, userId: 2, upTo: 3, own: false },
      { type: "presence", userId: 2, online: false },
    ]);
  });

  it("knows how far the peer has read, from ready and from live read frames", () => {
    expect(sock.peerReadMarker(7)).toBe(0);
    connectReady([{ room_id: 7, last_seq: 5, read_up_to: 5, peer_read_up_to: 3 }]);
    expect(sock.peerReadMarker(7)).toBe(3);
    expect(events.filter((e) => e.type === "read")).toEqual([{ type: "read", roomId: 7, userId: -1, upTo: 3, own: false }]);
    net.last.receive({ type: "read", room_id: 7, user_id: bob.id, up_to: 5 });
    expect(sock.peerReadMarker(7)).toBe(5);
    // Our own marker and an older ready do not move it.
    net.last.receive({ type: "read", room_id: 7, user_id: alice.id, up_to: 5 });
    sock.markRead(7, 5);
    net.last.serverClose();
    timers.advance(1000);
    connectReady([{ room_id: 7, last_seq: 5, read_up_to: 5, peer_read_up_to: 4 }]);
    expect(sock.peerReadMarker(7)).toBe(5);
    expect(sock.readMarker(7)).toBe(5);
  });

  it("sends typing only when connected", () => {
    sock.typing(7);
    connectReady();
    sock.typing(7);
    expect(net.last.sentOf("typing")).toEqual([{ type: "typing", room_id: 7 }]);
  });
});

describe("user_updated", () => {
  it("passes a profile change on, and keeps its own user current", () => {
    connectReady();
    net.last.receive({ type: "user_updated", user: { ...bob, display_name: "Bobby" } });
    expect(events).toContainEqual({ type: "user-updated", user: { ...bob, display_name: "Bobby" } });
    net.last.receive({ type: "user_updated", user: { ...alice, display_name: "Alice L." } });
    expect(sock.user?.display_name).toBe("Alice L.");
  });

  it("drops a malformed one", () => {
    connectReady();
    events = [];
    net.last.receive(JSON.stringify({ type: "user_updated", user: { id: "2" } }));
    net.last.receive(JSON.stringify({ type: "user_updated" }));
    expect(events.filter((e) => e.type === "user-updated")).toEqual([]);
  });
});
