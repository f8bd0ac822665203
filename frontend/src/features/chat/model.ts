// A conversation's messages as the view shows them: merged by seq (each once, in order), our
// unacknowledged sends after them, grouped by day and by sender. Pure, so it is unit-tested.
import type { Message } from "../../api/types";
import { daysBetween, formatDayLabel } from "../../lib/format";
import type { Outgoing } from "../../lib/socket";

export type DeliveryState = "sending" | "sent" | "read" | "failed";

export type ChatItem = {
  key: string;
  seq: number | null;
  senderId: number;
  body: string;
  createdAt: string;
  clientMsgId: string;
  own: boolean;
  /** Only for our own messages. */
  state: DeliveryState | null;
  /** Deleted by an administrator: shown as "message deleted". */
  deleted: boolean;
};

export type MessageGroup = { key: string; senderId: number; own: boolean; items: ChatItem[] };
export type DaySection = { key: string; label: string; date: string; groups: MessageGroup[] };

/** True for a tombstone: a message an administrator deleted (its body is erased). */
export function isDeleted(m: Pick<Message, "deleted_at">): boolean {
  return m.deleted_at != null;
}

/** Merges messages into an ascending-seq list with each seq once (the newer copy wins). */
export function mergeMessages(existing: readonly Message[], incoming: readonly Message[]): Message[] {
  if (incoming.length === 0) return existing as Message[];
  const bySeq = new Map<number, Message>();
  for (const m of existing) bySeq.set(m.seq, m);
  let changed = false;
  for (const m of incoming) {
    const old = bySeq.get(m.seq);
    if (!old || old.id !== m.id || old.body !== m.body || old.deleted_at !== m.deleted_at) {
      bySeq.set(m.seq, m);
      changed = true;
    }
  }
  if (!changed) return existing as Message[];
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

export type PendingEntry = { item: Outgoing; failed: string | null };

/**
 * The rows of the view: stored messages, then our sends still waiting for their ack — unless
 * the stored list already has them (matched by client_msg_id), so nothing shows twice.
 */
export function buildItems(
  messages: readonly Message[],
  pending: readonly PendingEntry[],
  meId: number,
  peerReadUpTo: number,
): ChatItem[] {
  const stored = new Set<string>();
  const items: ChatItem[] = messages.map((m) => {
    const own = m.sender_id === meId;
    if (own) stored.add(m.client_msg_id);
    return {
      key: `m${m.seq}`,
      seq: m.seq,
      senderId: m.sender_id,
      body: m.body,
      createdAt: m.created_at,
      clientMsgId: m.client_msg_id,
      own,
      state: own ? (m.seq <= peerReadUpTo ? "read" : "sent") : null,
      deleted: isDeleted(m),
    };
  });
  for (const p of pending) {
    if (stored.has(p.item.client_msg_id)) continue;
    items.push({
      key: `p${p.item.client_msg_id}`,
      seq: null,
      senderId: meId,
      body: p.item.body,
      createdAt: p.item.created_at,
      clientMsgId: p.item.client_msg_id,
      own: true,
      state: p.failed ? "failed" : "sending",
      deleted: false,
    });
  }
  return items;
}

/** Consecutive messages of one sender stay in one group unless this much time passes. */
export const GROUP_GAP_MS = 5 * 60_000;

export function groupItems(items: readonly ChatItem[], now: Date = new Date()): DaySection[] {
  const days: DaySection[] = [];
  let day: DaySection | undefined;
  let group: MessageGroup | undefined;
  let prev: ChatItem | undefined;
  for (const it of items) {
    const d = new Date(it.createdAt);
    const newDay = !day || !prev || daysBetween(new Date(prev.createdAt), d) !== 0;
    if (newDay) {
      day = { key: `d${it.key}`, label: formatDayLabel(it.createdAt, now), date: it.createdAt, groups: [] };
      days.push(day);
      group = undefined;
    }
    const gap = prev ? d.getTime() - new Date(prev.createdAt).getTime() : 0;
    if (!group || group.senderId !== it.senderId || gap > GROUP_GAP_MS) {
      group = { key: `g${it.key}`, senderId: it.senderId, own: it.own, items: [] };
      day?.groups.push(group);
    }
    group.items.push(it);
    prev = it;
  }
  return days;
}

/** The highest seq of a message from someone else (what "read up to" should cover). */
export function lastSeq(messages: readonly Message[]): number {
  return messages.length > 0 ? (messages[messages.length - 1]?.seq ?? 0) : 0;
}
