// A conversation's messages as the view shows them: merged by seq (each once, in order, each in
// its newest version by change_seq), our unacknowledged sends after them, grouped by day and by
// sender, with what they answer and their reactions. Pure, so it is unit-tested.
import type { Attachment, Message } from "../../api/types";
import { attachmentsOf, messagePreview } from "../../lib/attachments";
import { daysBetween, formatDayLabel } from "../../lib/format";
import type { Outgoing } from "../../lib/socket";

export type DeliveryState = "sending" | "sent" | "read" | "failed";

/** What a reply shows of the message it answers. */
export type ReplyPreview =
  | { kind: "message"; id: number; senderId: number; own: boolean; excerpt: string }
  /** The original was deleted: a tombstone. */
  | { kind: "deleted"; id: number }
  /** Not loaded: older than the history on screen. */
  | { kind: "older"; id: number };

/** A reaction as a chip shows it: who reacted, and whether one of them is us. */
export type ReactionChip = { emoji: string; userIds: number[]; mine: boolean };

export type ChatItem = {
  key: string;
  /** The stored message's id; null while it waits for its ack. */
  id: number | null;
  seq: number | null;
  senderId: number;
  body: string;
  createdAt: string;
  clientMsgId: string;
  own: boolean;
  /** Only for our own messages. */
  state: DeliveryState | null;
  /** Deleted (by its sender or an administrator): shown as "message deleted". */
  deleted: boolean;
  editedAt: string | null;
  replyTo: ReplyPreview | null;
  reactions: ReactionChip[];
  /** Photos and files, in the order sent; none for a deleted message. */
  attachments: Attachment[];
};

export type MessageGroup = { key: string; senderId: number; own: boolean; items: ChatItem[] };
export type DaySection = { key: string; label: string; date: string; groups: MessageGroup[] };

/** True for a tombstone: a deleted message (its body is erased). */
export function isDeleted(m: Pick<Message, "deleted_at">): boolean {
  return m.deleted_at != null;
}

/** Whether `incoming` should replace `old`, a copy of the same message: only a newer change does. */
export function isNewer(incoming: Message, old: Message): boolean {
  return (incoming.change_seq ?? 0) > (old.change_seq ?? 0);
}

/**
 * Merges messages into an ascending-seq list with each seq once. Of two copies of one message
 * the one with the higher change_seq wins, whichever came first (a replayed `message` can be
 * older than a `message_updated` already applied).
 */
export function mergeMessages(existing: readonly Message[], incoming: readonly Message[]): Message[] {
  if (incoming.length === 0) return existing as Message[];
  const bySeq = new Map<number, Message>();
  for (const m of existing) bySeq.set(m.seq, m);
  let changed = false;
  for (const m of incoming) {
    const old = bySeq.get(m.seq);
    if (!old || old.id !== m.id || isNewer(m, old)) {
      bySeq.set(m.seq, m);
      changed = true;
    }
  }
  if (!changed) return existing as Message[];
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/**
 * Applies changed messages to a list: each replaces the loaded copy of its message when newer.
 * A change to a message that is not loaded (older than the history on screen, or still on its
 * way in a page) is never inserted — it would open a hole in the history — but handed back, to
 * be applied when its page arrives.
 */
export function applyUpdates(
  existing: readonly Message[],
  updates: readonly Message[],
): { messages: Message[]; unplaced: Message[] } {
  if (updates.length === 0) return { messages: existing as Message[], unplaced: [] };
  const index = new Map<number, number>();
  existing.forEach((m, i) => index.set(m.id, i));
  let messages = existing as Message[];
  const unplaced: Message[] = [];
  for (const u of updates) {
    const i = index.get(u.id);
    const old = i === undefined ? undefined : messages[i];
    if (i === undefined || !old) {
      unplaced.push(u);
      continue;
    }
    if (!isNewer(u, old)) continue;
    if (messages === existing) messages = [...existing];
    messages[i] = u;
  }
  return { messages, unplaced };
}

/** Keeps, per message id, the newest of the held changes and the incoming ones. */
export function keepNewest(held: readonly Message[], incoming: readonly Message[]): Message[] {
  const byId = new Map<number, Message>();
  for (const m of [...held, ...incoming]) {
    const old = byId.get(m.id);
    if (!old || isNewer(m, old)) byId.set(m.id, m);
  }
  return [...byId.values()];
}

const EXCERPT_CHARS = 120;

/** One line of a message's text for a quote: whitespace folded, cut on a character boundary. */
export function excerpt(body: string, max = EXCERPT_CHARS): string {
  const chars = Array.from(body.replace(/\s+/gu, " ").trim());
  return chars.length > max ? `${chars.slice(0, max).join("")}…` : chars.join("");
}

/** What a reply to message `id` shows of it, from the messages loaded. */
export function replyPreview(id: number, byId: ReadonlyMap<number, Message>, meId: number): ReplyPreview {
  const m = byId.get(id);
  if (!m) return { kind: "older", id };
  if (isDeleted(m)) return { kind: "deleted", id };
  return { kind: "message", id, senderId: m.sender_id, own: m.sender_id === meId, excerpt: excerpt(messagePreview(m)) };
}

/** The reactions of a message as chips, in the server's order, ours marked. */
export function reactionChips(m: Pick<Message, "reactions">, meId: number): ReactionChip[] {
  return (m.reactions ?? [])
    .filter((r) => r.user_ids.length > 0)
    .map((r) => ({ emoji: r.emoji, userIds: r.user_ids, mine: r.user_ids.includes(meId) }));
}

/** The newest of our own messages that can still be edited (stored, not deleted), if any. */
export function lastOwnEditable(messages: readonly Message[], meId: number): Message | null {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && m.sender_id === meId && !isDeleted(m)) return m;
  }
  return null;
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
  const byId = new Map(messages.map((m) => [m.id, m]));
  const preview = (id: number | null | undefined) => (id == null ? null : replyPreview(id, byId, meId));
  const items: ChatItem[] = messages.map((m) => {
    const own = m.sender_id === meId;
    if (own) stored.add(m.client_msg_id);
    return {
      key: `m${m.seq}`,
      id: m.id,
      seq: m.seq,
      senderId: m.sender_id,
      body: m.body,
      createdAt: m.created_at,
      clientMsgId: m.client_msg_id,
      own,
      state: own ? (m.seq <= peerReadUpTo ? "read" : "sent") : null,
      deleted: isDeleted(m),
      editedAt: isDeleted(m) ? null : (m.edited_at ?? null),
      replyTo: isDeleted(m) ? null : preview(m.reply_to),
      reactions: isDeleted(m) ? [] : reactionChips(m, meId),
      attachments: attachmentsOf(m),
    };
  });
  for (const p of pending) {
    if (stored.has(p.item.client_msg_id)) continue;
    items.push({
      key: `p${p.item.client_msg_id}`,
      id: null,
      seq: null,
      senderId: meId,
      body: p.item.body,
      createdAt: p.item.created_at,
      clientMsgId: p.item.client_msg_id,
      own: true,
      state: p.failed ? "failed" : "sending",
      deleted: false,
      editedAt: null,
      replyTo: preview(p.item.reply_to),
      reactions: [],
      attachments: p.item.attachments ?? [],
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
