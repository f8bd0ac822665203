import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import type { Contact } from "../../../api/types";
import { useApi, useSession, useSocketEvents } from "../../../lib/services";
import { listContacts } from "../api";
import { contactsReducer, totalUnread } from "../model";
import { notifyMessage } from "../notifications";

export type ContactsApi = {
  contacts: Contact[];
  status: "loading" | "ready" | "error";
  unread: number;
  reload: () => void;
  added: (c: Contact) => void;
  /** Rooms where the other person is typing right now. */
  typingRooms: ReadonlySet<number>;
};

const TYPING_MS = 5000;

/**
 * The caller's contacts, kept live: loaded over REST (and again after every (re)connect, which
 * brings unread counts and presence up to date), then moved by socket events.
 */
export function useContacts(activeRoomId: number | null): ContactsApi {
  const api = useApi();
  const me = useSession()?.user;
  const [state, dispatch] = useReducer(contactsReducer, { contacts: [], status: "loading" });
  const inFlight = useRef<AbortController | null>(null);
  const stateRef = useRef(state);
  stateRef.current = state;
  const [typingRooms, setTypingRooms] = useState<ReadonlySet<number>>(() => new Set());
  const typingTimers = useRef(new Map<number, number>());

  const setTyping = useCallback((roomId: number, on: boolean) => {
    const timers = typingTimers.current;
    window.clearTimeout(timers.get(roomId));
    timers.delete(roomId);
    if (on) timers.set(roomId, window.setTimeout(() => setTyping(roomId, false), TYPING_MS));
    setTypingRooms((prev) => {
      if (prev.has(roomId) === on) return prev;
      const next = new Set(prev);
      if (on) next.add(roomId);
      else next.delete(roomId);
      return next;
    });
  }, []);

  useEffect(() => {
    const timers = typingTimers.current;
    return () => {
      for (const t of timers.values()) window.clearTimeout(t);
    };
  }, []);

  const reload = useCallback(() => {
    inFlight.current?.abort();
    const ctl = new AbortController();
    inFlight.current = ctl;
    listContacts(api, ctl.signal)
      .then((contacts) => dispatch({ type: "loaded", contacts }))
      .catch((err: unknown) => {
        if (err instanceof DOMException && err.name === "AbortError") return;
        dispatch({ type: "failed" });
      });
  }, [api]);

  useEffect(() => {
    reload();
    return () => inFlight.current?.abort();
  }, [reload]);

  useSocketEvents((e) => {
    switch (e.type) {
      case "ready":
        // Unread counts, previews and presence as of this connection (also after a reconnect).
        reload();
        return;
      case "message": {
        // A message from the other person ends their typing, whatever else happens to it.
        if (!e.own) setTyping(e.message.room_id, false);
        const known = stateRef.current.contacts.find((c) => c.room_id === e.message.room_id);
        if (!known) {
          // Someone new added us and wrote: their contact entry comes from the server.
          reload();
          return;
        }
        // The open conversation, on a visible page, marks its messages read itself: counting
        // them here would only flash a badge.
        const inView = e.message.room_id === activeRoomId && document.visibilityState === "visible";
        dispatch({ type: "message", message: e.message, unread: !e.own && !inView });
        if (!e.own && !inView) notifyMessage(known.user.display_name, e.message);
        return;
      }
      case "ack":
        dispatch({ type: "message", message: e.message, unread: false });
        return;
      case "message-updated":
      case "message-deleted":
        dispatch({ type: "updated", message: e.message });
        return;
      case "read":
        if (e.own) dispatch({ type: "own-read", roomId: e.roomId, upTo: e.upTo });
        return;
      case "typing":
        if (e.userId !== me?.id) setTyping(e.roomId, true);
        return;
      case "presence":
        dispatch({ type: "presence", userId: e.userId, online: e.online });
        return;
      case "user-updated":
        dispatch({ type: "user-updated", user: e.user });
        return;
      default:
        return;
    }
  });

  const added = useCallback((c: Contact) => dispatch({ type: "added", contact: c }), []);
  return { contacts: state.contacts, status: state.status, unread: totalUnread(state.contacts), reload, added, typingRooms };
}
