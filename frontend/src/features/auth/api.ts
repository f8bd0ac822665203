import { call, type ApiClient } from "../../lib/api-client";
import type { AuthResponse } from "../../api/types";

export function login(api: ApiClient, username: string, password: string): Promise<AuthResponse> {
  return call(() => api.POST("/api/auth/login", { body: { username, password } }));
}

export function register(api: ApiClient, username: string, password: string, displayName: string): Promise<AuthResponse> {
  const display_name = displayName.trim() || null;
  return call(() => api.POST("/api/auth/register", { body: { username, password, display_name } }));
}

/** Revokes the token server-side. The session ends locally whatever the answer. */
export async function logout(api: ApiClient): Promise<void> {
  try {
    await api.POST("/api/auth/logout");
  } catch {
    // offline: the local session still ends
  }
}
