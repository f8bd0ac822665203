// Fakes for the socket client's injectable WebSocket factory and timers.
import type { Message, User } from "../api/types";
import type { ClientFrame, ServerFrame } from "../lib/protocol";
import type { SocketLike, Timers } from "../lib/socket";

export class FakeSocket implements SocketLike {
  readyState = 0;
  sent: ClientFrame[] = [];
  closed: { code?: number; reason?: string } | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("not open");
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
    this.readyState = 3;
  }
  // test side
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame: ServerFrame | string): void {
    this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }
  serverClose(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
  sentOf<T extends ClientFrame["type"]>(type: T): Extract<ClientFrame, { type: T }>[] {
    return this.sent.filter((f): f is Extract<ClientFrame, { type: T }> => f.type === type);
  }
}

export class FakeNetwork {
  sockets: FakeSocket[] = [];
  factory = (url: string): SocketLike => {
    const s = new FakeSocket(url);
    this.sockets.push(s);
    return s;
  };
  get last(): FakeSocket {
    const s = this.sockets[this.sockets.length - 1];
    if (!s) throw new Error("no socket yet");
    return s;
  }
}

/** Manual clock: timers fire only when the test advances time. */
export class FakeTimers implements Timers {
  private t = 1_700_000_000_000;
  private nextId = 1;
  private queue = new Map<number, { at: number; fn: () => void }>();
  randomValue = 0.5;
  delays: number[] = [];

  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.nextId++;
    this.queue.set(id, { at: this.t + ms, fn });
    this.delays.push(ms);
    return id;
  };
  clearTimeout = (h: unknown): void => {
    if (typeof h === "number") this.queue.delete(h);
  };
  now = (): number => this.t;
  random = (): number => this.randomValue;

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.queue) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.queue.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
  pending(): number {
    return this.queue.size;
  }
}

export const alice: User = { id: 1, username: "alice", display_name: "Alice", created_at: "2026-01-01T00:00:00Z" };
export const bob: User = { id: 2, username: "bob", display_name: "Bob", created_at: "2026-01-01T00:00:00Z" };

let nextId = 1000;
export function msg(room_id: number, seq: number, sender_id: number, extra: Partial<Message> = {}): Message {
  return {
    id: nextId++,
    room_id,
    seq,
    sender_id,
    client_msg_id: `c-${room_id}-${seq}-${sender_id}`,
    body: `message ${seq}`,
    created_at: new Date(Date.UTC(2026, 0, 1, 12, 0, seq)).toISOString(),
    edited_at: null,
    deleted_at: null,
    reply_to: null,
    reactions: [],
    attachments: [],
    change_seq: 0,
    ...extra,
  };
}
