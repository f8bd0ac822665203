import { useCallback, useEffect, useReducer, useRef } from "react";
import type { Attachment, Message, Room, User } from "../../../api/types";
import { ApiError } from "../../../lib/api-client";
import { useServices, useSocketEvents } from "../../../lib/services";
import type { Outgoing } from "../../../lib/socket";
import { deleteMessage, editMessage, getHistory, getRoom, setReaction } from "../api";
import { withUserUpdate } from "../../../lib/users";
import { applyUpdates, keepNewest, lastSeq, mergeMessages, type PendingEntry } from "../model";

export type ConversationState = {
  status: "loading" | "ready" | "not-found" | "error";
  room: Room | null;
  messages: Message[];
  /** Changes to messages not loaded yet, applied when their page arrives. */
  heldUpdates: Message[];
  hasMore: boolean;
  loadingOlder: boolean;
  pending: PendingEntry[];
  peerReadUpTo: number;
  peerTyping: boolean;
  peerOnline: boolean | null;
};

type Action =
  | { type: "loaded"; room: Room; messages: Message[]; hasMore: boolean }
  | { type: "load-failed"; notFound: boolean }
  | { type: "older-start" }
  | { type: "older"; messages: Message[]; hasMore: boolean }
  | { type: "older-failed" }
  | { type: "messages"; messages: Message[] }
  | { type: "updated"; messages: Message[] }
  /** Our delete was accepted: show the tombstone before its `message_updated` arrives. */
  | { type: "tombstone"; id: number; at: string }
  | { type: "pending"; item: Outgoing }
  | { type: "acked"; clientMsgId: string; message: Message }
  | { type: "failed"; clientMsgId: string; reason: string }
  | { type: "retrying"; clientMsgId: string }
  | { type: "discard"; clientMsgId: string }
  | { type: "peer-read"; upTo: number }
  | { type: "peer-typing"; on: boolean }
  | { type: "peer-online"; online: boolean }
  /** A member's profile changed (`user_updated`). */
  | { type: "user-updated"; user: User };

/** Merges a page of history, then applies the changes held for its messages. */
function withPage(s: ConversationState, page: Message[]): Pick<ConversationState, "messages" | "heldUpdates"> {
  const merged = mergeMessages(s.messages, page);
  if (s.heldUpdates.length === 0) return { messages: merged, heldUpdates: s.heldUpdates };
  const { messages, unplaced } = applyUpdates(merged, s.heldUpdates);
  return { messages, heldUpdates: unplaced };
}

export function conversationReducer(s: ConversationState, a: Action): ConversationState {
  switch (a.type) {
    case "loaded":
      return { ...s, status: "ready", room: a.room, ...withPage(s, a.messages), hasMore: a.hasMore };
    case "load-failed":
      return { ...s, status: a.notFound ? "not-found" : "error" };
    case "older-start":
      return { ...s, loadingOlder: true };
    case "older":
      return { ...s, loadingOlder: false, hasMore: a.hasMore, ...withPage(s, a.messages) };
    case "older-failed":
      return { ...s, loadingOlder: false };
    case "messages": {
      const next = withPage(s, a.messages);
      return next.messages === s.messages ? s : { ...s, ...next };
    }
    case "updated": {
      const { messages, unplaced } = applyUpdates(s.messages, a.messages);
      const heldUpdates = unplaced.length > 0 ? keepNewest(s.heldUpdates, unplaced) : s.heldUpdates;
      return messages === s.messages && heldUpdates === s.heldUpdates ? s : { ...s, messages, heldUpdates };
    }
    case "tombstone":
      return {
        ...s,
        messages: s.messages.map((m) =>
          m.id === a.id && m.deleted_at == null ? { ...m, body: "", deleted_at: a.at, reactions: [], reply_to: null, attachments: [] } : m,
        ),
      };
    case "pending":
      if (s.pending.some((p) => p.item.client_msg_id === a.item.client_msg_id))
        return { ...s, pending: s.pending.map((p) => (p.item.client_msg_id === a.item.client_msg_id ? { ...p, failed: null } : p)) };
      return { ...s, pending: [...s.pending, { item: a.item, failed: null }] };
    case "acked":
      return {
        ...s,
        messages: mergeMessages(s.messages, [a.message]),
        pending: s.pending.filter((p) => p.item.client_msg_id !== a.clientMsgId),
      };
    case "failed":
      return { ...s, pending: s.pending.map((p) => (p.item.client_msg_id === a.clientMsgId ? { ...p, failed: a.reason } : p)) };
    case "retrying":
      return { ...s, pending: s.pending.map((p) => (p.item.client_msg_id === a.clientMsgId ? { ...p, failed: null } : p)) };
    case "discard":
      return { ...s, pending: s.pending.filter((p) => p.item.client_msg_id !== a.clientMsgId) };
    case "peer-read":
      return a.upTo > s.peerReadUpTo ? { ...s, peerReadUpTo: a.upTo } : s;
    case "peer-typing":
      return s.peerTyping === a.on ? s : { ...s, peerTyping: a.on };
    case "peer-online":
      return { ...s, peerOnline: a.online };
    case "user-updated": {
      if (!s.room) return s;
      let changed = false;
      const members = s.room.members.map((u) => {
        const next = withUserUpdate(u, a.user);
        if (!next) return u;
        changed = true;
        return next;
      });
      return changed ? { ...s, room: { ...s.room, members } } : s;
    }
  }
}

const TYPING_MS = 5000;

export type Conversation = ConversationState & {
  peer: User | null;
  send: (body: string, replyTo?: number, attachments?: readonly Attachment[]) => void;
  /** Saves a new text for one of our messages; rejects with the server's reason (an ApiError). */
  edit: (messageId: number, body: string) => Promise<void>;
  remove: (messageId: number) => Promise<void>;
  react: (messageId: number, emoji: string, on: boolean) => Promise<void>;
  retry: (clientMsgId: string) => void;
  discard: (clientMsgId: string) => void;
  loadOlder: () => void;
  reload: () => void;
};

/** One room's live conversation: REST history + socket events, deduplicated by seq. */
export function useConversation(roomId: number, me: User, initialOnline: boolean | null): Conversation {
  const { api, socket } = useServices();
  const [state, dispatch] = useReducer(conversationReducer, undefined, (): ConversationState => ({
    status: "loading",
    room: null,
    messages: [],
    heldUpdates: [],
    hasMore: false,
    loadingOlder: false,
    pending: socket.pending(roomId).map((item) => ({ item, failed: null })),
    // The socket knows it from `ready` (and live `read` frames); later changes arrive as events.
    peerReadUpTo: socket.peerReadMarker(roomId),
    peerTyping: false,
    peerOnline: initialOnline,
  }));
  const stateRef = useRef(state);
  stateRef.current = state;
  const failedItems = useRef(new Map<string, Outgoing>());
  const typingTimer = useRef<number | undefined>(undefined);
  const peer = state.room?.members.find((u) => u.id !== me.id) ?? null;
  const peerRef = useRef(peer);
  peerRef.current = peer;

  useEffect(() => {
    if (initialOnline !== null) dispatch({ type: "peer-online", online: initialOnline });
  }, [initialOnline]);

  /** Fetches whatever came after `after` (belt and braces with the socket's sync): a message
   * stored between the history snapshot and the socket's `ready` would otherwise be missed. */
  const catchUpFrom = useCallback(
    async (after: number) => {
      for (let i = 0; i < 20; i++) {
        try {
          const page = await getHistory(api, roomId, { after });
          dispatch({ type: "messages", messages: page.messages });
          after = Math.max(after, lastSeq(page.messages));
          if (!page.has_more || page.messages.length === 0) break;
        } catch {
          break;
        }
      }
    },
    [api, roomId],
  );

  const load = useCallback(
    (signal?: AbortSignal) => {
      Promise.all([getRoom(api, roomId, signal), getHistory(api, roomId, {}, signal)])
        .then(([room, page]) => {
          dispatch({ type: "loaded", room, messages: page.messages, hasMore: page.has_more });
          const seq = lastSeq(page.messages);
          if (seq > 0) socket.noteSeen(roomId, seq);
          if (socket.getState().status === "open" && !signal?.aborted) void catchUpFrom(seq);
        })
        .catch((err: unknown) => {
          if (err instanceof DOMException && err.name === "AbortError") return;
          const notFound = err instanceof ApiError && (err.status === 404 || err.status === 422);
          dispatch({ type: "load-failed", notFound });
        });
    },
    [api, roomId, socket, catchUpFrom],
  );

  useEffect(() => {
    const unwatch = socket.watch(roomId);
    const ctl = new AbortController();
    load(ctl.signal);
    return () => {
      ctl.abort();
      unwatch();
      window.clearTimeout(typingTimer.current);
    };
  }, [socket, roomId, load]);

  const onReady = useCallback(() => {
    const s = stateRef.current;
    if (s.status === "error") load();
    else if (s.status === "ready") void catchUpFrom(lastSeq(s.messages));
  }, [load, catchUpFrom]);

  useSocketEvents((e) => {
    switch (e.type) {
      case "ready":
        onReady();
        return;
      case "message":
        if (e.message.room_id !== roomId) return;
        dispatch({ type: "messages", messages: [e.message] });
        if (!e.own) {
          window.clearTimeout(typingTimer.current);
          dispatch({ type: "peer-typing", on: false });
        }
        return;
      case "message-deleted":
      case "message-updated":
        if (e.message.room_id !== roomId) return;
        dispatch({ type: "updated", messages: [e.message] });
        return;
      case "ack":
        if (e.message.room_id !== roomId) return;
        dispatch({ type: "acked", clientMsgId: e.message.client_msg_id, message: e.message });
        return;
      case "pending":
        if (e.item.room_id === roomId) dispatch({ type: "pending", item: e.item });
        return;
      case "send-failed":
        if (e.item.room_id !== roomId) return;
        failedItems.current.set(e.item.client_msg_id, e.item);
        dispatch({ type: "failed", clientMsgId: e.item.client_msg_id, reason: e.message || e.code });
        return;
      case "read":
        if (e.roomId !== roomId || e.own) return;
        dispatch({ type: "peer-read", upTo: e.upTo });
        return;
      case "typing":
        if (e.roomId !== roomId || e.userId === me.id) return;
        dispatch({ type: "peer-typing", on: true });
        window.clearTimeout(typingTimer.current);
        typingTimer.current = window.setTimeout(() => dispatch({ type: "peer-typing", on: false }), TYPING_MS);
        return;
      case "user-updated":
        dispatch({ type: "user-updated", user: e.user });
        return;
      case "presence":
        if (peerRef.current && e.userId === peerRef.current.id) {
          dispatch({ type: "peer-online", online: e.online });
          if (!e.online) dispatch({ type: "peer-typing", on: false });
        }
        return;
      default:
        return;
    }
  });

  const send = useCallback(
    (body: string, replyTo?: number, attachments?: readonly Attachment[]) => void socket.send(roomId, body, replyTo, attachments),
    [socket, roomId],
  );

  // Each answer is the message as it is now: applied at once (the `message_updated` that
  // follows carries the same change_seq and changes nothing).
  const edit = useCallback(
    async (messageId: number, body: string) => {
      const m = await editMessage(api, { room_id: roomId, message_id: messageId }, body);
      dispatch({ type: "updated", messages: [m] });
    },
    [api, roomId],
  );

  const remove = useCallback(
    async (messageId: number) => {
      await deleteMessage(api, { room_id: roomId, message_id: messageId });
      // Same change_seq as before: the real tombstone, with its own change_seq, replaces it.
      dispatch({ type: "tombstone", id: messageId, at: new Date().toISOString() });
    },
    [api, roomId],
  );

  const react = useCallback(
    async (messageId: number, emoji: string, on: boolean) => {
      const m = await setReaction(api, { room_id: roomId, message_id: messageId }, emoji, on);
      dispatch({ type: "updated", messages: [m] });
    },
    [api, roomId],
  );

  const retry = useCallback(
    (clientMsgId: string) => {
      const item = failedItems.current.get(clientMsgId);
      if (!item) return;
      failedItems.current.delete(clientMsgId);
      dispatch({ type: "retrying", clientMsgId });
      socket.retry(item);
    },
    [socket],
  );

  const discard = useCallback((clientMsgId: string) => {
    failedItems.current.delete(clientMsgId);
    dispatch({ type: "discard", clientMsgId });
  }, []);

  const loadOlder = useCallback(() => {
    const s = stateRef.current;
    if (s.loadingOlder || !s.hasMore || s.status !== "ready") return;
    const first = s.messages[0];
    if (!first) return;
    dispatch({ type: "older-start" });
    getHistory(api, roomId, { before: first.seq })
      .then((page) => dispatch({ type: "older", messages: page.messages, hasMore: page.has_more }))
      .catch(() => dispatch({ type: "older-failed" }));
  }, [api, roomId]);

  const reload = useCallback(() => load(), [load]);

  return { ...state, peer, send, edit, remove, react, retry, discard, loadOlder, reload };
}
