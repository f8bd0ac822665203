import { call, type ApiClient } from "../../lib/api-client";
import type { Message, MessagePage, Room } from "../../api/types";

export const PAGE_SIZE = 50;

export function getRoom(api: ApiClient, roomId: number, signal?: AbortSignal): Promise<Room> {
  return call(() => api.GET("/api/rooms/{room_id}", { params: { path: { room_id: roomId } }, signal }));
}

export function getHistory(
  api: ApiClient,
  roomId: number,
  cursor: { before?: number; after?: number } = {},
  signal?: AbortSignal,
): Promise<MessagePage> {
  return call(() =>
    api.GET("/api/rooms/{room_id}/messages", {
      params: { path: { room_id: roomId }, query: { ...cursor, limit: PAGE_SIZE } },
      signal,
    }),
  );
}

type MessagePath = { room_id: number; message_id: number };

/** Replaces the text of one of our messages; the server answers with the message as edited. */
export function editMessage(api: ApiClient, path: MessagePath, body: string): Promise<Message> {
  return call(() => api.PATCH("/api/rooms/{room_id}/messages/{message_id}", { params: { path }, body: { body } }));
}

/** Deletes one of our messages: it stays as a tombstone in its place. */
export async function deleteMessage(api: ApiClient, path: MessagePath): Promise<void> {
  await call(() => api.DELETE("/api/rooms/{room_id}/messages/{message_id}", { params: { path } }));
}

/** Adds (`on`) or takes back our reaction with one emoji; the answer is the message as it is now. */
export function setReaction(api: ApiClient, path: MessagePath, emoji: string, on: boolean): Promise<Message> {
  const params = { path: { ...path, emoji } };
  const url = "/api/rooms/{room_id}/messages/{message_id}/reactions/{emoji}" as const;
  return call(() => (on ? api.PUT(url, { params }) : api.DELETE(url, { params })));
}
