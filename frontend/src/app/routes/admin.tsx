// /admin and below: the administration screen, for administrators only (others see "not found").
import { useEffect } from "react";
import { Spinner } from "../../components/Spinner";
import { AdminScreen, useIsAdmin, type AdminView } from "../../features/admin";
import { matchPath } from "../../lib/router";
import { NotFoundRoute } from "./not-found";

/** The admin view a path names, or null when it names none. */
export function adminView(path: string): AdminView | null {
  const p = path.replace(/\/+$/, "") || "/";
  if (p === "/admin") return { tab: "users" };
  if (p === "/admin/rooms") return { tab: "rooms" };
  if (p === "/admin/stats") return { tab: "stats" };
  if (p === "/admin/audit") return { tab: "audit" };
  const id = (m: Record<string, string> | null, k: string) => {
    const n = Number(m?.[k]);
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  };
  const user = id(matchPath("/admin/users/:id", p), "id");
  if (user) return { tab: "user", id: user };
  const room = id(matchPath("/admin/rooms/:id", p), "id");
  if (room) return { tab: "room", id: room };
  return null;
}

export function AdminRoute({ view }: { view: AdminView | null }) {
  const isAdmin = useIsAdmin();
  useEffect(() => {
    document.title = "Administration · Let's Chat";
  }, []);
  if (isAdmin === null)
    return (
      <div className="admin__loading">
        <Spinner />
      </div>
    );
  if (!isAdmin || !view) return <NotFoundRoute />;
  return <AdminScreen view={view} />;
}
