import { call, type ApiClient } from "../../lib/api-client";
import type { MessagePage, Room } from "../../api/types";

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
