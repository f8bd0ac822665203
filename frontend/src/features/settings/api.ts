// The account self-service endpoints: profile, password, sessions, deleting the account.
import type { components } from "../../api/schema";
import type { User } from "../../api/types";
import { call, type ApiClient } from "../../lib/api-client";

export type AccountSession = components["schemas"]["Session"];

export function listSessions(api: ApiClient, signal?: AbortSignal): Promise<AccountSession[]> {
  return call(() => api.GET("/api/sessions", signal ? { signal } : {}));
}

export async function endSession(api: ApiClient, id: number): Promise<void> {
  await call(() => api.DELETE("/api/sessions/{session_id}", { params: { path: { session_id: id } } }));
}

export async function endOtherSessions(api: ApiClient): Promise<void> {
  await call(() => api.POST("/api/sessions/revoke-others"));
}

export function updateDisplayName(api: ApiClient, displayName: string): Promise<User> {
  return call(() => api.PATCH("/api/me", { body: { display_name: displayName } }));
}

export async function changePassword(api: ApiClient, currentPassword: string, newPassword: string): Promise<void> {
  await call(() => api.POST("/api/me/password", { body: { current_password: currentPassword, new_password: newPassword } }));
}

export async function deleteAccount(api: ApiClient, password: string): Promise<void> {
  await call(() => api.DELETE("/api/me", { body: { password } }));
}
