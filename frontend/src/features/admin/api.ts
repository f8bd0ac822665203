// The administration API (/api/admin/*), through the one typed client.
import { call, type ApiClient } from "../../lib/api-client";
import type { components } from "../../api/schema";

type S = components["schemas"];
export type AdminUser = S["AdminUser"];
export type AdminUserPage = S["AdminUserPage"];
export type AdminRoom = S["AdminRoom"];
export type AdminRoomPage = S["AdminRoomPage"];
export type AdminStats = S["AdminStats"];
export type AuditEntry = S["AuditEntry"];
export type AuditPage = S["AuditPage"];
import type { Message, MessagePage } from "../../api/types";
export type { Message, MessagePage };

export const PAGE_SIZE = 25;

/** Whether the caller is an administrator (`GET /api/me` says `is_admin: true`). */
export async function fetchIsAdmin(api: ApiClient, signal?: AbortSignal): Promise<boolean> {
  const me = await call(() => api.GET("/api/me", { signal }));
  return (me as { is_admin?: boolean }).is_admin === true;
}

export function listUsers(api: ApiClient, q: string, after: number | null, signal?: AbortSignal): Promise<AdminUserPage> {
  const query: { q?: string; after?: number; limit: number } = { limit: PAGE_SIZE };
  if (q.trim()) query.q = q.trim();
  if (after !== null) query.after = after;
  return call(() => api.GET("/api/admin/users", { params: { query }, signal }));
}

export function getUser(api: ApiClient, id: number, signal?: AbortSignal): Promise<AdminUser> {
  return call(() => api.GET("/api/admin/users/{user_id}", { params: { path: { user_id: id } }, signal }));
}

export function createUser(
  api: ApiClient,
  body: { username: string; password: string; display_name?: string; is_admin?: boolean },
): Promise<AdminUser> {
  return call(() => api.POST("/api/admin/users", { body }));
}

export function setActive(api: ApiClient, id: number, active: boolean): Promise<AdminUser> {
  const params = { path: { user_id: id } };
  return active
    ? call(() => api.POST("/api/admin/users/{user_id}/reactivate", { params }))
    : call(() => api.POST("/api/admin/users/{user_id}/deactivate", { params }));
}

export async function resetPassword(api: ApiClient, id: number, password: string): Promise<void> {
  await call(() => api.POST("/api/admin/users/{user_id}/password", { params: { path: { user_id: id } }, body: { password } }));
}

export function setAdmin(api: ApiClient, id: number, isAdmin: boolean): Promise<AdminUser> {
  return call(() =>
    api.PUT("/api/admin/users/{user_id}/admin", { params: { path: { user_id: id } }, body: { is_admin: isAdmin } }),
  );
}

export function listRooms(
  api: ApiClient,
  opts: { userId?: number | null; before?: number | null },
  signal?: AbortSignal,
): Promise<AdminRoomPage> {
  const query: { user_id?: number; before?: number; limit: number } = { limit: PAGE_SIZE };
  if (opts.userId != null) query.user_id = opts.userId;
  if (opts.before != null) query.before = opts.before;
  return call(() => api.GET("/api/admin/rooms", { params: { query }, signal }));
}

export function getRoom(api: ApiClient, id: number, signal?: AbortSignal): Promise<AdminRoom> {
  return call(() => api.GET("/api/admin/rooms/{room_id}", { params: { path: { room_id: id } }, signal }));
}

export function roomMessages(api: ApiClient, id: number, before: number | null, signal?: AbortSignal): Promise<MessagePage> {
  const query: { before?: number; limit: number } = { limit: 50 };
  if (before !== null) query.before = before;
  return call(() =>
    api.GET("/api/admin/rooms/{room_id}/messages", { params: { path: { room_id: id }, query }, signal }),
  );
}

export function deleteMessage(api: ApiClient, id: number): Promise<Message> {
  return call(() => api.DELETE("/api/admin/messages/{message_id}", { params: { path: { message_id: id } } }));
}

export function getStats(api: ApiClient, signal?: AbortSignal): Promise<AdminStats> {
  return call(() => api.GET("/api/admin/stats", { signal }));
}

export function listAudit(api: ApiClient, before: number | null, signal?: AbortSignal): Promise<AuditPage> {
  const query: { before?: number; limit: number } = { limit: 50 };
  if (before !== null) query.before = before;
  return call(() => api.GET("/api/admin/audit", { params: { query }, signal }));
}
