// Device tokens: the server hands one out at every register and login, and a later login that
// presents it is judged on this device's own failed attempts only — so someone guessing the
// password elsewhere cannot lock the owner out of the browsers they use. Kept per username in
// localStorage (it survives logout on purpose), at most MAX_ENTRIES of them, newest first.

const KEY = "letschat.deviceTokens";
const MAX_ENTRIES = 20;

type Entry = { user: string; token: string };

function read(storage: Storage): Entry[] {
  try {
    const raw = storage.getItem(KEY);
    const parsed: unknown = raw ? JSON.parse(raw) : [];
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (e): e is Entry => typeof e === "object" && e !== null && typeof e.user === "string" && typeof e.token === "string",
    );
  } catch {
    return [];
  }
}

/** The device token this browser got for `username` (usernames compare case-insensitively). */
export function deviceTokenFor(username: string, storage: Storage = localStorage): string | undefined {
  const user = username.trim().toLowerCase();
  return read(storage).find((e) => e.user === user)?.token;
}

/** Keeps `token` for `username`, replacing an older one. Storage errors are ignored. */
export function rememberDeviceToken(username: string, token: string | null | undefined, storage: Storage = localStorage): void {
  if (!token) return;
  const user = username.trim().toLowerCase();
  const entries = [{ user, token }, ...read(storage).filter((e) => e.user !== user)].slice(0, MAX_ENTRIES);
  try {
    storage.setItem(KEY, JSON.stringify(entries));
  } catch {
    // private mode or a full quota: logins still work, only without the device's protection
  }
}
