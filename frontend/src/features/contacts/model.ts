// The contacts list's state and how live events change it (pure, so it is unit-tested).
import type { Contact, Message, User } from "../../api/types";
import { messagePreview } from "../../lib/attachments";
import { isDeletedUser, withUserUpdate } from "../../lib/users";

export type ContactsState = { contacts: Contact[]; status: "loading" | "ready" | "error" };

export type ContactsAction =
  | { type: "loaded"; contacts: Contact[] }
  | { type: "failed" }
  | { type: "added"; contact: Contact }
  /** `unread`: whether it counts as unread (from the other person, and not read on screen). */
  | { type: "message"; message: Message; unread: boolean }
  /** A message changed (edited, deleted, reacted to): the preview follows if it is the last one. */
  | { type: "updated"; message: Message }
  | { type: "own-read"; roomId: number; upTo: number }
  | { type: "presence"; userId: number; online: boolean }
  /** A user's profile changed (`user_updated`): their row shows the new name. */
  | { type: "user-updated"; user: User };

function activity(c: Contact): number {
  return c.last_message ? Date.parse(c.last_message.created_at) : 0;
}

/** Most recent conversation first; contacts without messages after, by name. */
export function sortContacts(list: Contact[]): Contact[] {
  return [...list].sort((a, b) => {
    const d = activity(b) - activity(a);
    if (d !== 0) return d;
    return a.user.display_name.localeCompare(b.user.display_name);
  });
}

export function contactsReducer(state: ContactsState, action: ContactsAction): ContactsState {
  switch (action.type) {
    case "loaded":
      return { contacts: sortContacts(action.contacts), status: "ready" };
    case "failed":
      return state.status === "ready" ? state : { ...state, status: "error" };
    case "added": {
      const rest = state.contacts.filter((c) => c.user.id !== action.contact.user.id);
      return { ...state, contacts: sortContacts([action.contact, ...rest]) };
    }
    case "message": {
      const m = action.message;
      let changed = false;
      const contacts = state.contacts.map((c) => {
        if (c.room_id !== m.room_id) return c;
        if (c.last_message && c.last_message.seq >= m.seq) return c;
        changed = true;
        return { ...c, last_message: m, unread_count: action.unread ? c.unread_count + 1 : c.unread_count };
      });
      return changed ? { ...state, contacts: sortContacts(contacts) } : state;
    }
    case "updated": {
      const m = action.message;
      let changed = false;
      const contacts = state.contacts.map((c) => {
        const last = c.last_message;
        if (!last || last.id !== m.id || (m.change_seq ?? 0) <= (last.change_seq ?? 0)) return c;
        changed = true;
        return { ...c, last_message: m };
      });
      return changed ? { ...state, contacts } : state;
    }
    case "own-read": {
      let changed = false;
      const contacts = state.contacts.map((c) => {
        if (c.room_id !== action.roomId || c.unread_count === 0) return c;
        const last = c.last_message?.seq ?? 0;
        const unread = action.upTo >= last ? 0 : Math.min(c.unread_count, last - action.upTo);
        if (unread === c.unread_count) return c;
        changed = true;
        return { ...c, unread_count: unread };
      });
      return changed ? { ...state, contacts } : state;
    }
    case "presence": {
      let changed = false;
      const contacts = state.contacts.map((c) => {
        if (c.user.id !== action.userId || c.online === action.online) return c;
        changed = true;
        return { ...c, online: action.online };
      });
      return changed ? { ...state, contacts } : state;
    }
    case "user-updated": {
      let changed = false;
      const contacts = state.contacts.map((c) => {
        const user = withUserUpdate(c.user, action.user);
        if (!user) return c;
        changed = true;
        // A deleted account is never online again.
        return { ...c, user, online: isDeletedUser(user) ? false : c.online };
      });
      return changed ? { ...state, contacts: sortContacts(contacts) } : state;
    }
  }
}

export function totalUnread(contacts: Contact[]): number {
  return contacts.reduce((n, c) => n + c.unread_count, 0);
}

const LABEL_PREVIEW_CHARS = 80;

/** The text a row shows for a message: its body, what it carries when it has no text ("🖼 Photo",
 * "🖼 3 photos", "📎 report.pdf"), or a note when it was deleted. */
export function previewText(m: Message): string {
  return messagePreview(m);
}

/**
 * A contact row's accessible name: who, presence, unread count, typing, and the last message
 * ("last message: …" or "last message from you: …"), cut to 80 characters on a character
 * boundary (never inside an emoji).
 */
export function contactLabel(contact: Contact, meId: number, typing: boolean): string {
  const { user, last_message: last, unread_count: unread, online } = contact;
  let lastPart = "no messages yet";
  if (last) {
    const chars = Array.from(previewText(last).replace(/\s+/gu, " ").trim());
    const text = chars.length > LABEL_PREVIEW_CHARS ? `${chars.slice(0, LABEL_PREVIEW_CHARS).join("")}…` : chars.join("");
    lastPart = `${last.sender_id === meId ? "last message from you" : "last message"}: ${text}`;
  }
  return [
    user.display_name,
    online ? "online" : "offline",
    unread > 0 ? `${unread} unread ${unread === 1 ? "message" : "messages"}` : null,
    typing ? "typing" : null,
    lastPart,
  ]
    .filter((part): part is string => part !== null)
    .join(", ");
}
