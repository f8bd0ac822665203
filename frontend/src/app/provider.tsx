// Creates the app's services once and ties the socket to the session: logged in means one
// socket for this tab; logged out (or a 401 anywhere) closes it and forgets its queue.
import { useEffect, useState, type ReactNode } from "react";
import { createApiClient } from "../lib/api-client";
import { ServicesProvider, type Services } from "../lib/services";
import { SessionStore } from "../lib/session";
import { browserSocket, ChatSocket } from "../lib/socket";

function socketUrl(): string {
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${window.location.host}/api/ws`;
}

export function createServices(): Services {
  const session = new SessionStore(window.localStorage, window.sessionStorage);
  const api = createApiClient(session);
  const socket = new ChatSocket({ url: socketUrl(), factory: browserSocket });
  return { session, api, socket };
}

export function AppProvider({ children, services }: { children: ReactNode; services?: Services }) {
  const [s] = useState(() => services ?? createServices());

  useEffect(() => {
    const { session, socket, api } = s;
    const follow = () => {
      const token = session.token();
      if (token) socket.start(token);
      else socket.stop();
    };
    follow();
    const offSession = session.subscribe(follow);

    let failedBeforeReady = 0;
    const offSocket = socket.subscribe((e) => {
      if (e.type === "auth-failed") session.clear("expired");
      if (e.type === "ready") {
        failedBeforeReady = 0;
        session.updateUser(e.user);
      }
      if (e.type === "user-updated") session.updateUser(e.user);
      if (e.type === "closed" && e.code === 1008) {
        // 1008: the session was ended elsewhere (revoked, password changed, account deleted), or
        // a limit was hit. A REST call tells which: 401 logs out through the client's middleware.
        void api.GET("/api/me").catch(() => undefined);
      }
      if (e.type === "closed" && e.beforeReady && ++failedBeforeReady % 3 === 0) {
        // Repeated failures before `ready` may be a revoked token: a REST call answers 401
        // then, and the client's middleware logs out.
        void api.GET("/api/me").catch(() => undefined);
      }
    });

    const onStorage = (e: StorageEvent) => {
      if (e.key === null || e.key === "letschat.session") session.syncFromStorage();
    };
    const onOnline = () => socket.networkBack();
    const onVisible = () => document.visibilityState === "visible" && socket.reconnectNow();
    window.addEventListener("storage", onStorage);
    window.addEventListener("online", onOnline);
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      offSession();
      offSocket();
      window.removeEventListener("storage", onStorage);
      window.removeEventListener("online", onOnline);
      document.removeEventListener("visibilitychange", onVisible);
      socket.stop();
    };
  }, [s]);

  return <ServicesProvider value={s}>{children}</ServicesProvider>;
}
