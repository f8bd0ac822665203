// The WebSocket frames of /api/ws, written once from the wire contract (api-contract.md,
// "WebSocket"). OpenAPI does not describe them; the objects they carry (user, message) do
// come from the generated schema.
import type { Message, User } from "../api/types";

/** `peer_read_up_to`: how far the other member has read; `last_change_seq`: the room's newest
 * change (both absent from older servers). */
export type RoomState = {
  room_id: number;
  last_seq: number;
  read_up_to: number;
  peer_read_up_to?: number;
  last_change_seq?: number;
};

export type ClientFrame =
  | { type: "auth"; token: string }
  /** `attachments`: ids of the sender's own uploads, at most 10; `body` may then be empty. */
  | { type: "send"; room_id: number; client_msg_id: string; body: string; reply_to?: number; attachments?: string[] }
  | { type: "sync"; room_id: number; after: number; changes_after?: number }
  | { type: "typing"; room_id: number }
  | { type: "read"; room_id: number; up_to: number }
  | { type: "ping" };

export type ServerFrame =
  | { type: "ready"; user: User; rooms: RoomState[] }
  | { type: "ack"; client_msg_id: string; message: Message }
  | { type: "message"; message: Message }
  | { type: "message_updated"; message: Message }
  | { type: "synced"; room_id: number; last_seq: number; last_change_seq?: number }
  | { type: "typing"; room_id: number; user_id: number }
  | { type: "read"; room_id: number; user_id: number; up_to: number }
  | { type: "presence"; user_id: number; online: boolean }
  | { type: "message_deleted"; room_id: number; seq: number; message: Message }
  /** A user's profile changed (a new display name, or the account deleted): `user` as it is now. */
  | { type: "user_updated"; user: User }
  | { type: "pong" }
  | { type: "error"; code: string; message: string; client_msg_id?: string };

const SERVER_TYPES = new Set<ServerFrame["type"]>([
  "ready", "ack", "message", "message_updated", "synced", "typing", "read", "presence", "message_deleted", "user_updated", "pong", "error",
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isMessage(v: unknown): v is Message {
  return (
    isObject(v) &&
    typeof v.id === "number" &&
    typeof v.room_id === "number" &&
    typeof v.seq === "number" &&
    typeof v.sender_id === "number" &&
    typeof v.client_msg_id === "string" &&
    typeof v.body === "string" &&
    typeof v.created_at === "string"
  );
}

/** Parses one text frame; anything that is not a well-formed server frame gives null. */
export function parseServerFrame(text: string): ServerFrame | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(raw) || typeof raw.type !== "string") return null;
  if (!SERVER_TYPES.has(raw.type as ServerFrame["type"])) return null;
  const num = (k: string) => typeof raw[k] === "number";
  switch (raw.type) {
    case "ready":
      return isObject(raw.user) && Array.isArray(raw.rooms) ? (raw as ServerFrame) : null;
    case "ack":
      return typeof raw.client_msg_id === "string" && isMessage(raw.message) ? (raw as ServerFrame) : null;
    case "message":
    case "message_updated":
      return isMessage(raw.message) ? (raw as ServerFrame) : null;
    case "synced":
      return num("room_id") && num("last_seq") ? (raw as ServerFrame) : null;
    case "typing":
      return num("room_id") && num("user_id") ? (raw as ServerFrame) : null;
    case "read":
      return num("room_id") && num("user_id") && num("up_to") ? (raw as ServerFrame) : null;
    case "presence":
      return num("user_id") && typeof raw.online === "boolean" ? (raw as ServerFrame) : null;
    case "message_deleted":
      return num("room_id") && num("seq") && isMessage(raw.message) ? (raw as ServerFrame) : null;
    case "user_updated":
      return isObject(raw.user) && typeof raw.user.id === "number" && typeof raw.user.display_name === "string"
        ? (raw as ServerFrame)
        : null;
    case "pong":
      return raw as ServerFrame;
    case "error":
      return typeof raw.code === "string" ? ({ message: "", ...raw } as ServerFrame) : null;
    default:
      return null;
  }
}
