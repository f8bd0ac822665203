// The session (token + user): kept in memory and in localStorage, so a reload stays logged in
// and logging out in one tab logs out the others.
import type { User } from "../api/types";

export type Session = { token: string; user: User };
/** `deleted`: the account was deleted (from this device). */
export type EndReason = "logout" | "expired" | "deleted";

const KEY = "letschat.session";
const ENDED_KEY = "letschat.session-ended";

function isSession(v: unknown): v is Session {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  const u = s.user as Record<string, unknown> | null | undefined;
  return typeof s.token === "string" && typeof u === "object" && u !== null && typeof u.id === "number";
}

export class SessionStore {
  private current: Session | null;
  private lastEnd: EndReason | null = null;
  private listeners = new Set<() => void>();

  /** `storage` keeps the session (localStorage); `tabStorage` (sessionStorage) keeps why it
   * ended, so the login page can say so even after a reload. */
  constructor(
    private readonly storage: Storage | null,
    private readonly tabStorage: Storage | null = null,
  ) {
    this.current = this.read();
    try {
      const ended = this.tabStorage?.getItem(ENDED_KEY);
      if (ended === "expired" || ended === "logout" || ended === "deleted") this.lastEnd = ended;
    } catch {
      // ignore
    }
  }

  get(): Session | null {
    return this.current;
  }

  token(): string | null {
    return this.current?.token ?? null;
  }

  /** Why the last session ended, for the login page to explain ("expired"); forgotten at the next login. */
  endReason(): EndReason | null {
    return this.lastEnd;
  }

  set(s: Session): void {
    this.current = s;
    this.lastEnd = null;
    try {
      this.tabStorage?.removeItem(ENDED_KEY);
      this.storage?.setItem(KEY, JSON.stringify(s));
    } catch {
      // storage full or disabled: the session lasts for this tab
    }
    this.notify();
  }

  /** The user changed (a new display name): same token, new user, kept and announced. */
  updateUser(user: User): void {
    const cur = this.current;
    if (!cur || cur.user.id !== user.id) return;
    const u = cur.user;
    if (u.display_name === user.display_name && u.username === user.username) return;
    this.set({ token: cur.token, user: { ...u, ...user } });
  }

  clear(reason: EndReason): void {
    if (!this.current) return;
    this.current = null;
    this.lastEnd = reason;
    try {
      this.tabStorage?.setItem(ENDED_KEY, reason);
      this.storage?.removeItem(KEY);
    } catch {
      // ignore
    }
    this.notify();
  }

  /** Another tab logged in or out. */
  syncFromStorage(): void {
    const next = this.read();
    if (next?.token === this.current?.token) return;
    this.current = next;
    if (!next) this.lastEnd = "logout";
    this.notify();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private read(): Session | null {
    try {
      const raw = this.storage?.getItem(KEY);
      if (!raw) return null;
      const v: unknown = JSON.parse(raw);
      return isSession(v) ? v : null;
    } catch {
      return null;
    }
  }

  private notify(): void {
    for (const fn of [...this.listeners]) fn();
  }
}
