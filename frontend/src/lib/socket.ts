// The reconnecting, typed WebSocket client of /api/ws: one per tab.
//
// It authenticates with the first frame (never a token in the URL), reconnects with exponential
// backoff and jitter, and after every `ready` asks for what it missed (`sync` from the last seq
// it saw in each watched room). Outgoing messages wait in an outbox under their client_msg_id
// until acknowledged and are resent after a reconnect; the server's idempotency makes a resend
// safe. Incoming messages come out once each and in seq order per room: duplicates (seq already
// seen, or our own send echoed back) are dropped and gaps are filled by `sync`. Changes to
// messages (edits, deletes, reactions) come as `message-updated`; the client keeps each room's
// last change_seq and, after a reconnect, asks `sync` for the changes it missed too.
//
// A plain class with an injectable WebSocket factory and timers, so it runs under unit tests.
import type { Attachment, Message, User } from "../api/types";
import { newClientMsgId } from "./ids";
import { parseServerFrame, type ClientFrame, type RoomState, type ServerFrame } from "./protocol";

/** The part of the browser's WebSocket the client uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type SocketFactory = (url: string) => SocketLike;

/** The browser's WebSocket behind the SocketLike interface. */
export function browserSocket(url: string): SocketLike {
  const ws = new WebSocket(url);
  const adapter: SocketLike = {
    get readyState() {
      return ws.readyState;
    },
    send: (data) => ws.send(data),
    close: (code, reason) => ws.close(code, reason),
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
  };
  ws.onopen = (ev) => adapter.onopen?.(ev);
  ws.onmessage = (ev: MessageEvent<unknown>) => adapter.onmessage?.({ data: ev.data });
  ws.onclose = (ev) => adapter.onclose?.({ code: ev.code, reason: ev.reason });
  ws.onerror = (ev) => adapter.onerror?.(ev);
  return adapter;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
  random(): number;
}

export const browserTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
  random: () => Math.random(),
};

export type ConnectionState =
  | { status: "idle" }
  | { status: "connecting"; attempt: number }
  | { status: "open" }
  | { status: "waiting"; attempt: number; retryAt: number };

export type Outgoing = {
  client_msg_id: string;
  room_id: number;
  body: string;
  created_at: string;
  /** The message this one answers, if any. */
  reply_to?: number;
  /** The uploads it carries (the frame sends their ids; the view shows them while it waits). */
  attachments?: Attachment[];
};

export type SocketEvent =
  | { type: "state"; state: ConnectionState }
  | { type: "ready"; user: User; rooms: RoomState[]; reconnect: boolean }
  | { type: "message"; message: Message; own: boolean }
  /** An administrator deleted a message: `message` is its tombstone (same seq, empty body). */
  | { type: "message-deleted"; message: Message }
  /** A message changed (edited, deleted, reacted to): `message` is it as it is now. */
  | { type: "message-updated"; message: Message }
  | { type: "pending"; item: Outgoing }
  | { type: "ack"; item: Outgoing | null; message: Message }
  | { type: "send-failed"; item: Outgoing; code: string; message: string }
  | { type: "synced"; roomId: number; lastSeq: number; lastChangeSeq: number | null }
  | { type: "typing"; roomId: number; userId: number }
  | { type: "read"; roomId: number; userId: number; upTo: number; own: boolean }
  | { type: "presence"; userId: number; online: boolean }
  /** A user's display name changed (or the account was deleted): show `user` for that id. */
  | { type: "user-updated"; user: User }
  | { type: "error"; code: string; message: string }
  | { type: "auth-failed" }
  | { type: "closed"; code: number; beforeReady: boolean };

export type SocketOptions = {
  url: string;
  factory: SocketFactory;
  timers?: Timers;
  /** First reconnect delay before jitter, doubled per failed attempt up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  pingIntervalMs?: number;
  /** With no frame at all for this long after a ping, the connection counts as dead. */
  pongTimeoutMs?: number;
  /** Without `ready` this long after opening, the attempt counts as failed. */
  readyTimeoutMs?: number;
  /** How long a gap in a room's seqs may stay open before `sync` is asked to fill it. */
  gapGraceMs?: number;
  /** A connection that stayed up this long resets the backoff (one that drops right after
   * `ready` keeps backing off, so a server that accepts and then closes is not hammered). */
  stableAfterMs?: number;
};

type RoomTrack = {
  /** Highest seq delivered in order; null until known. */
  lastSeq: number | null;
  /** Highest change_seq seen (from `ready`, `message_updated`, `synced`); null until known. */
  lastChangeSeq: number | null;
  /** Messages that arrived ahead of a gap, by seq. */
  ahead: Map<number, Message>;
  syncing: boolean;
  gapTimer: unknown;
  /** Our own read marker as last sent (or as the server reported it). */
  readUpTo: number;
  /** The other member's read marker, as the server last reported it. */
  peerReadUpTo: number;
  readDirty: boolean;
};

const OPEN = 1;

/** Reconnect delay for the given attempt: exponential with "equal jitter" (half fixed, half random). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * The change_seq to ask `sync` for changes after, when `ready` says the room has newer changes
 * than the client has seen; null when nothing was missed (or the room is new to the client).
 */
export function missedChanges(seen: number | null, newest: number | undefined): number | null {
  return seen !== null && newest !== undefined && newest > seen ? seen : null;
}

export class ChatSocket {
  private readonly opts: Required<Omit<SocketOptions, "timers">> & { timers: Timers };
  private listeners = new Set<(e: SocketEvent) => void>();
  private ws: SocketLike | null = null;
  private token: string | null = null;
  private state: ConnectionState = { status: "idle" };
  private attempt = 0;
  private ready = false;
  private everReady = false;
  private me: User | null = null;
  private rooms = new Map<number, RoomTrack>();
  /** How many views show each room. */
  private watchers = new Map<number, number>();
  private outbox: Outgoing[] = [];
  private reconnectTimer: unknown = null;
  private pingTimer: unknown = null;
  private pongTimer: unknown = null;
  private readyTimer: unknown = null;
  private readyAt: number | null = null;

  constructor(options: SocketOptions) {
    this.opts = {
      baseDelayMs: 500,
      maxDelayMs: 15_000,
      pingIntervalMs: 25_000,
      pongTimeoutMs: 10_000,
      readyTimeoutMs: 10_000,
      gapGraceMs: 800,
      stableAfterMs: 10_000,
      timers: browserTimers,
      ...options,
    };
  }

  // ---- public API -------------------------------------------------------------------------

  subscribe(listener: (e: SocketEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  getState(): ConnectionState {
    return this.state;
  }

  get user(): User | null {
    return this.me;
  }

  /** Connects with this token (and keeps reconnecting until stop()). */
  start(token: string): void {
    if (this.token === token && this.state.status !== "idle") return;
    this.stop();
    this.token = token;
    this.connect();
  }

  /** Closes for good (log out): forgets the token, the outbox and every room. */
  stop(): void {
    this.token = null;
    this.clearTimers();
    this.attempt = 0;
    this.readyAt = null;
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    this.everReady = false;
    this.me = null;
    this.outbox = [];
    for (const r of this.rooms.values()) this.opts.timers.clearTimeout(r.gapTimer);
    this.rooms.clear();
    if (ws) this.detachAndClose(ws, 1000, "logout");
    this.setState({ status: "idle" });
  }

  /** Skips the backoff wait (the tab became visible, the user asked to retry). */
  reconnectNow(): void {
    if (!this.token) return;
    if (this.state.status === "waiting") {
      this.opts.timers.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
      this.connect();
    }
  }

  /**
   * The browser is back online. A connection that lived through the outage may have died with
   * the network without a close event, so a fresh one starts at once: `ready` and `sync` bring
   * back whatever was missed, and unacknowledged messages are sent again.
   */
  networkBack(): void {
    if (!this.token) return;
    const ws = this.ws;
    if (ws) this.drop(ws, 1000, "network changed");
    this.reconnectNow();
  }

  /** Queues a message; it is sent now if connected, else on the next `ready`. */
  send(roomId: number, body: string, replyTo?: number, attachments?: readonly Attachment[]): Outgoing {
    const item: Outgoing = {
      client_msg_id: newClientMsgId(),
      room_id: roomId,
      body,
      created_at: new Date(this.opts.timers.now()).toISOString(),
      ...(replyTo !== undefined ? { reply_to: replyTo } : {}),
      ...(attachments && attachments.length > 0 ? { attachments: [...attachments] } : {}),
    };
    this.outbox.push(item);
    this.emit({ type: "pending", item });
    if (this.ready) this.sendFrame(item);
    return item;
  }

  /** Messages sent but not yet acknowledged, oldest first. */
  pending(roomId?: number): Outgoing[] {
    return this.outbox.filter((o) => roomId === undefined || o.room_id === roomId);
  }

  /** Puts a failed message back in the outbox under its own client_msg_id. */
  retry(item: Outgoing): void {
    if (this.outbox.some((o) => o.client_msg_id === item.client_msg_id)) return;
    this.outbox.push(item);
    this.emit({ type: "pending", item });
    if (this.ready) this.sendFrame(item);
  }

  typing(roomId: number): void {
    if (this.ready) this.frame({ type: "typing", room_id: roomId });
  }

  /** Moves our read marker forward (never back); sent now or after the next `ready`. */
  markRead(roomId: number, upTo: number): void {
    const r = this.track(roomId);
    if (upTo <= r.readUpTo) return;
    r.readUpTo = upTo;
    r.readDirty = true;
    if (this.ready) this.flushRead(roomId, r);
    this.emit({ type: "read", roomId, userId: this.me?.id ?? -1, upTo, own: true });
  }

  readMarker(roomId: number): number {
    return this.rooms.get(roomId)?.readUpTo ?? 0;
  }

  /** How far the other member of the room has read, as far as this socket knows. */
  peerReadMarker(roomId: number): number {
    return this.rooms.get(roomId)?.peerReadUpTo ?? 0;
  }

  /**
   * A view shows this room: after a reconnect it gets `sync`ed. Returns the unwatch function.
   * Views are counted apart from the rooms' state, which a new session (start) forgets: a view
   * opened before the session started still counts.
   */
  watch(roomId: number): () => void {
    this.watchers.set(roomId, (this.watchers.get(roomId) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.watchers.get(roomId) ?? 1) - 1;
      if (n > 0) this.watchers.set(roomId, n);
      else this.watchers.delete(roomId);
    };
  }

  /** Tells the client that a seq was seen elsewhere (REST history), so sync starts after it. */
  noteSeen(roomId: number, seq: number): void {
    const r = this.track(roomId);
    if (r.lastSeq === null || (seq > r.lastSeq && r.ahead.size === 0)) r.lastSeq = seq;
  }

  lastSeq(roomId: number): number | null {
    return this.rooms.get(roomId)?.lastSeq ?? null;
  }

  /** The room's newest change this client has seen, null until known. */
  lastChangeSeq(roomId: number): number | null {
    return this.rooms.get(roomId)?.lastChangeSeq ?? null;
  }

  // ---- connection lifecycle ---------------------------------------------------------------

  private connect(): void {
    if (!this.token) return;
    this.reconnectTimer = null;
    this.setState({ status: "connecting", attempt: this.attempt });
    let ws: SocketLike;
    try {
      ws = this.opts.factory(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws || !this.token) return;
      this.frame({ type: "auth", token: this.token });
      this.readyTimer = this.opts.timers.setTimeout(() => {
        if (this.ws === ws && !this.ready) this.drop(ws, 4000, "no ready");
      }, this.opts.readyTimeoutMs);
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== "string") return;
      this.alive();
      const frame = parseServerFrame(ev.data);
      if (frame) this.handle(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.onClosed(ev.code);
    };
    ws.onerror = () => {
      // A close event always follows; reconnecting is handled there.
    };
  }

  private onClosed(code: number): void {
    const beforeReady = !this.ready;
    if (this.readyAt !== null && this.opts.timers.now() - this.readyAt >= this.opts.stableAfterMs) this.attempt = 0;
    this.readyAt = null;
    this.ws = null;
    this.ready = false;
    this.clearTimers();
    for (const r of this.rooms.values()) {
      this.opts.timers.clearTimeout(r.gapTimer);
      r.syncing = false;
    }
    this.emit({ type: "closed", code, beforeReady });
    if (this.token) this.scheduleReconnect();
  }

  /** Gives up on a connection that looks dead, without waiting for the browser's close event. */
  private drop(ws: SocketLike, code: number, reason: string): void {
    this.detachAndClose(ws, code, reason);
    if (this.ws === ws) this.onClosed(code);
  }

  private detachAndClose(ws: SocketLike, code: number, reason: string): void {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.attempt, this.opts.baseDelayMs, this.opts.maxDelayMs, this.opts.timers.random);
    this.attempt += 1;
    this.setState({ status: "waiting", attempt: this.attempt, retryAt: this.opts.timers.now() + delay });
    this.reconnectTimer = this.opts.timers.setTimeout(() => this.connect(), delay);
  }

  private clearTimers(): void {
    const t = this.opts.timers;
    t.clearTimeout(this.reconnectTimer);
    t.clearTimeout(this.pingTimer);
    t.clearTimeout(this.pongTimer);
    t.clearTimeout(this.readyTimer);
    this.reconnectTimer = this.pingTimer = this.pongTimer = this.readyTimer = null;
  }

  /** Any frame proves the connection alive; the next ping goes out a full interval later. */
  private alive(): void {
    const t = this.opts.timers;
    t.clearTimeout(this.pongTimer);
    this.pongTimer = null;
    if (!this.ready) return;
    t.clearTimeout(this.pingTimer);
    this.pingTimer = t.setTimeout(() => this.ping(), this.opts.pingIntervalMs);
  }

  private ping(): void {
    const ws = this.ws;
    if (!ws || !this.ready) return;
    this.frame({ type: "ping" });
    this.pongTimer = this.opts.timers.setTimeout(() => this.drop(ws, 4001, "ping timeout"), this.opts.pongTimeoutMs);
  }

  // ---- frames -------------------------------------------------------------------------------

  private handle(f: ServerFrame): void {
    switch (f.type) {
      case "ready":
        return this.onReady(f.user, f.rooms);
      case "message":
        return this.onMessage(f.message);
      case "ack":
        return this.onAck(f.client_msg_id, f.message);
      case "message_updated": {
        const r = this.track(f.message.room_id);
        if (r.lastChangeSeq === null || f.message.change_seq > r.lastChangeSeq) r.lastChangeSeq = f.message.change_seq;
        return this.emit({ type: "message-updated", message: f.message });
      }
      case "synced":
        return this.onSynced(f.room_id, f.last_seq, f.last_change_seq);
      case "typing":
        return this.emit({ type: "typing", roomId: f.room_id, userId: f.user_id });
      case "read": {
        const own = f.user_id === this.me?.id;
        const r = this.track(f.room_id);
        if (own) {
          if (f.up_to > r.readUpTo) r.readUpTo = f.up_to;
        } else if (f.up_to > r.peerReadUpTo) {
          r.peerReadUpTo = f.up_to;
        }
        return this.emit({ type: "read", roomId: f.room_id, userId: f.user_id, upTo: f.up_to, own });
      }
      case "presence":
        return this.emit({ type: "presence", userId: f.user_id, online: f.online });
      case "message_deleted":
        return this.emit({ type: "message-deleted", message: f.message });
      case "user_updated":
        if (this.me && f.user.id === this.me.id) this.me = f.user;
        return this.emit({ type: "user-updated", user: f.user });
      case "pong":
        return;
      case "error":
        return this.onError(f.code, f.message, f.client_msg_id);
    }
  }

  private onReady(user: User, rooms: RoomState[]): void {
    this.opts.timers.clearTimeout(this.readyTimer);
    this.readyTimer = null;
    const reconnect = this.everReady;
    this.ready = true;
    this.everReady = true;
    this.readyAt = this.opts.timers.now();
    this.me = user;
    this.setState({ status: "open" });
    this.alive();
    for (const rs of rooms) {
      const r = this.track(rs.room_id);
      if (rs.read_up_to > r.readUpTo) r.readUpTo = rs.read_up_to;
      if (rs.peer_read_up_to !== undefined && rs.peer_read_up_to > r.peerReadUpTo) {
        r.peerReadUpTo = rs.peer_read_up_to;
        this.emit({ type: "read", roomId: rs.room_id, userId: -1, upTo: rs.peer_read_up_to, own: false });
      }
      const newMessages = r.lastSeq !== null && rs.last_seq > r.lastSeq;
      const changesAfter = missedChanges(r.lastChangeSeq, rs.last_change_seq);
      if (r.lastSeq === null) r.lastSeq = rs.last_seq;
      // A room seen for the first time starts from its newest change: what it shows comes
      // from the REST history, which has every message as it is now.
      if (r.lastChangeSeq === null && rs.last_change_seq !== undefined) r.lastChangeSeq = rs.last_change_seq;
      if (!newMessages && changesAfter === null) continue;
      if (this.watchers.has(rs.room_id)) {
        this.requestSync(rs.room_id, r, changesAfter ?? undefined);
      } else {
        // Nobody shows this room: skip its backlog (the contacts list refetches on ready).
        r.lastSeq = rs.last_seq;
        if (rs.last_change_seq !== undefined) r.lastChangeSeq = rs.last_change_seq;
        r.ahead.clear();
      }
    }
    this.emit({ type: "ready", user, rooms, reconnect });
    for (const [roomId, r] of this.rooms) if (r.readDirty) this.flushRead(roomId, r);
    for (const o of this.outbox) this.sendFrame(o);
  }

  private onMessage(m: Message): void {
    const mine = this.outbox.find((o) => o.client_msg_id === m.client_msg_id);
    if (mine && m.sender_id === this.me?.id) {
      // Our send was stored but the ack was lost with the old connection: this is the ack.
      this.onAck(m.client_msg_id, m);
      return;
    }
    this.deliver(m);
  }

  private onAck(clientMsgId: string, m: Message): void {
    const idx = this.outbox.findIndex((o) => o.client_msg_id === clientMsgId);
    const item = idx >= 0 ? (this.outbox.splice(idx, 1)[0] ?? null) : null;
    this.emit({ type: "ack", item, message: m });
    this.deliver(m);
  }

  /** Puts a message through the per-room order: once each, in seq order, gaps filled by sync. */
  private deliver(m: Message): void {
    const r = this.track(m.room_id);
    if (r.lastSeq === null) {
      r.lastSeq = m.seq;
      this.emitMessage(m);
      return;
    }
    if (m.seq <= r.lastSeq || r.ahead.has(m.seq)) return; // seen already
    if (m.seq === r.lastSeq + 1) {
      r.lastSeq = m.seq;
      this.emitMessage(m);
      let next = r.ahead.get(r.lastSeq + 1);
      while (next) {
        r.ahead.delete(next.seq);
        r.lastSeq = next.seq;
        this.emitMessage(next);
        next = r.ahead.get(r.lastSeq + 1);
      }
      if (r.ahead.size === 0) {
        this.opts.timers.clearTimeout(r.gapTimer);
        r.gapTimer = null;
      }
      return;
    }
    // A gap: hold the message; if the missing ones do not turn up soon, ask for them.
    r.ahead.set(m.seq, m);
    if (!r.syncing && r.gapTimer === null) {
      r.gapTimer = this.opts.timers.setTimeout(() => {
        r.gapTimer = null;
        if (r.ahead.size > 0 && !r.syncing) this.requestSync(m.room_id, r);
      }, this.opts.gapGraceMs);
    }
  }

  private onSynced(roomId: number, lastSeq: number, lastChangeSeq: number | undefined): void {
    const r = this.track(roomId);
    r.syncing = false;
    if (lastChangeSeq !== undefined && (r.lastChangeSeq === null || lastChangeSeq > r.lastChangeSeq)) r.lastChangeSeq = lastChangeSeq;
    // Whatever still waits behind a gap was not replayed (it came after the sync's snapshot
    // while the gap stayed): ask again.
    if (r.ahead.size > 0) this.requestSync(roomId, r);
    this.emit({ type: "synced", roomId, lastSeq, lastChangeSeq: r.lastChangeSeq });
  }

  private onError(code: string, message: string, clientMsgId?: string): void {
    if (code === "unauthorized") {
      // The token is expired or revoked: reconnecting cannot help.
      this.stop();
      this.emit({ type: "auth-failed" });
      return;
    }
    if (clientMsgId) {
      const idx = this.outbox.findIndex((o) => o.client_msg_id === clientMsgId);
      const item = idx >= 0 ? this.outbox[idx] : undefined;
      if (item) {
        if (code === "rate_limited") {
          // Stays queued; the next send or reconnect carries it.
          this.opts.timers.setTimeout(() => {
            if (this.ready && this.outbox.includes(item)) this.sendFrame(item);
          }, 1000);
          return;
        }
        this.outbox.splice(idx, 1);
        this.emit({ type: "send-failed", item, code, message });
        return;
      }
    }
    this.emit({ type: "error", code, message });
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** Asks for the messages after the last seq (and, with `changesAfter`, the changes after it). */
  private requestSync(roomId: number, r: RoomTrack, changesAfter?: number): void {
    this.opts.timers.clearTimeout(r.gapTimer);
    r.gapTimer = null;
    r.syncing = true;
    this.frame({
      type: "sync",
      room_id: roomId,
      after: r.lastSeq ?? 0,
      ...(changesAfter !== undefined ? { changes_after: changesAfter } : {}),
    });
  }

  private sendFrame(o: Outgoing): void {
    this.frame({
      type: "send",
      room_id: o.room_id,
      client_msg_id: o.client_msg_id,
      body: o.body,
      ...(o.reply_to !== undefined ? { reply_to: o.reply_to } : {}),
      ...(o.attachments && o.attachments.length > 0 ? { attachments: o.attachments.map((a) => a.id) } : {}),
    });
  }

  private flushRead(roomId: number, r: RoomTrack): void {
    r.readDirty = false;
    this.frame({ type: "read", room_id: roomId, up_to: r.readUpTo });
  }

  private track(roomId: number): RoomTrack {
    let r = this.rooms.get(roomId);
    if (!r) {
      r = { lastSeq: null, lastChangeSeq: null, ahead: new Map(), syncing: false, gapTimer: null, readUpTo: 0, peerReadUpTo: 0, readDirty: false };
      this.rooms.set(roomId, r);
    }
    return r;
  }

  private emitMessage(m: Message): void {
    this.emit({ type: "message", message: m, own: m.sender_id === this.me?.id });
  }

  private frame(f: ClientFrame): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return;
    try {
      ws.send(JSON.stringify(f));
    } catch {
      // The close event follows and the outbox keeps what was not acknowledged.
    }
  }

  private setState(s: ConnectionState): void {
    this.state = s;
    this.emit({ type: "state", state: s });
  }

  private emit(e: SocketEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        console.error("socket listener failed", err);
      }
    }
  }
}
