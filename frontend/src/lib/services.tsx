// The app's long-lived services (session, REST client, socket), handed down through React
// context so features reach them without importing the app layer.
import { createContext, useContext, useEffect, useRef, useSyncExternalStore, type ReactNode } from "react";
import type { ApiClient } from "./api-client";
import type { Session, SessionStore } from "./session";
import type { ChatSocket, ConnectionState, SocketEvent } from "./socket";

export type Services = { session: SessionStore; api: ApiClient; socket: ChatSocket };

const ServicesContext = createContext<Services | null>(null);

export function ServicesProvider({ value, children }: { value: Services; children: ReactNode }) {
  return <ServicesContext.Provider value={value}>{children}</ServicesContext.Provider>;
}

export function useServices(): Services {
  const s = useContext(ServicesContext);
  if (!s) throw new Error("useServices outside ServicesProvider");
  return s;
}

export function useApi(): ApiClient {
  return useServices().api;
}

export function useSocket(): ChatSocket {
  return useServices().socket;
}

export function useSession(): Session | null {
  const { session } = useServices();
  return useSyncExternalStore(
    (fn) => session.subscribe(fn),
    () => session.get(),
  );
}

export function useConnectionState(): ConnectionState {
  const socket = useSocket();
  return useSyncExternalStore(
    (fn) => socket.subscribe((e) => e.type === "state" && fn()),
    () => socket.getState(),
  );
}

/** Calls the handler for every socket event while mounted; the latest handler is always used. */
export function useSocketEvents(handler: (e: SocketEvent) => void): void {
  const socket = useSocket();
  const ref = useRef(handler);
  useEffect(() => {
    ref.current = handler;
  });
  useEffect(() => socket.subscribe((e) => ref.current(e)), [socket]);
}
