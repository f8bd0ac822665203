// Pure helpers of the admin screens (unit-tested).
import type { AuditEntry } from "./api";

const ACTIONS: Record<string, string> = {
  "user.create": "created user",
  "user.deactivate": "deactivated",
  "user.reactivate": "reactivated",
  "user.password_reset": "reset the password of",
  "user.grant_admin": "made admin",
  "user.revoke_admin": "removed admin from",
  "message.delete": "deleted a message in",
};

/** "root deactivated @bob", "command line made admin @root". */
export function describeAudit(e: Pick<AuditEntry, "action" | "actor_username" | "detail">): string {
  const who = e.actor_username ?? "command line";
  const what = ACTIONS[e.action] ?? e.action;
  return `${who} ${what} ${e.detail}`.trim();
}

/** A user's status as a short label. */
export function userStatus(u: { deactivated_at?: string | null; online: boolean }): "deactivated" | "online" | "offline" {
  if (u.deactivated_at) return "deactivated";
  return u.online ? "online" : "offline";
}

/** Appends a page to a list, keeping each id once (a page may overlap after a refresh). */
export function appendPage<T extends { id: number }>(list: readonly T[], page: readonly T[]): T[] {
  const seen = new Set(list.map((x) => x.id));
  return [...list, ...page.filter((x) => !seen.has(x.id))];
}

/** Replaces one item by id (after an action returned its new state). */
export function replaceById<T extends { id: number }>(list: readonly T[], item: T): T[] {
  return list.map((x) => (x.id === item.id ? item : x));
}

/** 1234567 → "1,234,567". */
export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** A time as "2026-11-25 13:05", or a dash for none. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}
