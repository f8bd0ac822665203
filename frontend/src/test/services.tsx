// Real services (session, REST client, socket) wired to fakes: a scripted fetch, a fake network
// and a manual clock, for tests that render components or hooks.
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import type { ReactNode } from "react";
import type { User } from "../api/types";
import { createApiClient } from "../lib/api-client";
import type { ServerFrame } from "../lib/protocol";
import type { Services } from "../lib/services";
import { SessionStore } from "../lib/session";
import { ChatSocket } from "../lib/socket";
import { FakeNetwork, FakeTimers } from "./fakes";
import { MemoryStorage } from "./storage";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/** Answers REST calls by path ("GET /api/contacts") with JSON; unknown paths get 404. */
export type Routes = Record<string, () => unknown>;

export type TestServices = Services & { net: FakeNetwork; timers: FakeTimers; calls: string[] };

export function testServices(me: User, routes: Routes): TestServices {
  const session = new SessionStore(new MemoryStorage(), new MemoryStorage());
  session.set({ token: "tok-test", user: me });
  const calls: string[] = [];
  const fetchFake = async (input: RequestInfo | URL): Promise<Response> => {
    const req = input instanceof Request ? input : new Request(input);
    const key = `${req.method} ${new URL(req.url).pathname}`;
    calls.push(key);
    const route = routes[key];
    if (!route) return new Response(JSON.stringify({ error: { code: "not_found", message: "not found" } }), { status: 404 });
    return new Response(JSON.stringify(route()), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  const api = createApiClient(session, { baseUrl: "http://test", fetch: fetchFake });
  const net = new FakeNetwork();
  const timers = new FakeTimers();
  const socket = new ChatSocket({ url: "ws://test/api/ws", factory: net.factory, timers });
  return { session, api, socket, net, timers, calls };
}

/** Opens the fake socket and lets the server say `ready`. */
export function socketReady(s: TestServices, me: User): void {
  act(() => {
    s.net.last.open();
    s.net.last.receive({ type: "ready", user: me, rooms: [] });
  });
}

export function serverSends(s: TestServices, frame: ServerFrame): void {
  act(() => s.net.last.receive(frame));
}

export type Mounted = { host: HTMLElement; root: Root; unmount: () => void };

export function mount(ui: ReactNode): Mounted {
  const host = document.createElement("div");
  document.body.appendChild(host);
  const root = createRoot(host);
  act(() => root.render(ui));
  return {
    host,
    root,
    unmount: () => {
      act(() => root.unmount());
      host.remove();
    },
  };
}

/** Lets pending promises (fetch answers) settle inside act. */
export async function settle(): Promise<void> {
  await act(async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  });
}
