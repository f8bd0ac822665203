// The routes. Logged out, only /login and /register exist (anything else goes to /login and
// back after logging in); logged in, those two go to the chats.
import { useEffect } from "react";
import { matchPath, navigate, usePathname } from "../lib/router";
import { useSession } from "../lib/services";
import { AdminRoute, adminView } from "./routes/admin";
import { ChatsRoute } from "./routes/chats";
import { LoginRoute, RegisterRoute } from "./routes/auth";
import { NotFoundRoute } from "./routes/not-found";
import { SettingsRoute } from "./routes/settings";

export function AppRouter() {
  const path = usePathname();
  const session = useSession();
  const authPage = path === "/login" || path === "/register";

  useEffect(() => {
    if (!session && !authPage) {
      const back = path !== "/" ? `?next=${encodeURIComponent(path)}` : "";
      navigate(`/login${back}`, { replace: true });
    } else if (session && authPage) {
      const next = new URLSearchParams(window.location.search).get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
    }
  }, [session, authPage, path]);

  if (!session) {
    if (path === "/register") return <RegisterRoute />;
    return <LoginRoute />;
  }
  if (authPage) return null;
  if (path === "/") return <ChatsRoute roomId={null} />;
  if (path === "/settings" || path === "/settings/") return <SettingsRoute />;
  if (path === "/admin" || path.startsWith("/admin/")) return <AdminRoute view={adminView(path)} />;
  const chat = matchPath("/chat/:roomId", path);
  if (chat) {
    const id = Number(chat.roomId);
    if (Number.isSafeInteger(id) && id > 0) return <ChatsRoute roomId={id} />;
  }
  return <NotFoundRoute />;
}
