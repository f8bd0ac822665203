// Users as `user_updated` frames change them: a new display name, or an account deleted.
import type { User } from "../api/types";

/** The same user with what a `user_updated` frame says about them now (null when it is someone
 * else, or nothing changes). */
export function withUserUpdate(current: User, update: User): User | null {
  if (current.id !== update.id) return null;
  if (current.display_name === update.display_name && current.username === update.username) return null;
  return { ...current, ...update };
}

/** Whether the user is a deleted account (`~deleted-<id>`; `~` can never be registered). */
export function isDeletedUser(u: Pick<User, "username"> | null | undefined): boolean {
  return u?.username.startsWith("~") ?? false;
}
