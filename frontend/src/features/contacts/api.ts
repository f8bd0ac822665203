import { call, type ApiClient } from "../../lib/api-client";
import type { Contact, User } from "../../api/types";

export function listContacts(api: ApiClient, signal?: AbortSignal): Promise<Contact[]> {
  return call(() => api.GET("/api/contacts", { signal }));
}

export function searchContacts(api: ApiClient, q: string, signal?: AbortSignal): Promise<Contact[]> {
  return call(() => api.GET("/api/contacts/search", { params: { query: { q } }, signal }));
}

export function searchUsers(api: ApiClient, q: string, signal?: AbortSignal): Promise<User[]> {
  return call(() => api.GET("/api/users/search", { params: { query: { q, limit: 20 } }, signal }));
}

export function addContact(api: ApiClient, username: string): Promise<Contact> {
  return call(() => api.POST("/api/contacts", { body: { username } }));
}
