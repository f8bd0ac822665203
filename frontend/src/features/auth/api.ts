import { call, type ApiClient } from "../../lib/api-client";
import type { AuthResponse } from "../../api/types";
import { deviceTokenFor, rememberDeviceToken } from "./deviceTokens";

export async function login(api: ApiClient, username: string, password: string): Promise<AuthResponse> {
  const device_token = deviceTokenFor(username) ?? null;
  const res = await call(() => api.POST("/api/auth/login", { body: { username, password, device_token } }));
  rememberDeviceToken(res.user.username, res.device_token);
  return res;
}

export async function register(api: ApiClient, username: string, password: string, displayName: string): Promise<AuthResponse> {
  const display_name = displayName.trim() || null;
  const res = await call(() => api.POST("/api/auth/register", { body: { username, password, display_name } }));
  rememberDeviceToken(res.user.username, res.device_token);
  return res;
}

/** Revokes the token server-side. The session ends locally whatever the answer. */
export async function logout(api: ApiClient): Promise<void> {
  try {
    await api.POST("/api/auth/logout");
  } catch {
    // offline: the local session still ends
  }
}
