// @vitest-environment jsdom
import { act } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AppProvider } from "../app/provider";
import { alice } from "../test/fakes";
import { mount, socketReady, testServices, type Mounted, type TestServices } from "../test/services";
import { ConnectionBanner } from "./ConnectionBanner";

let online = true;
let s: TestServices;
let mounted: Mounted | null = null;

beforeEach(() => {
  online = true;
  vi.spyOn(navigator, "onLine", "get").mockImplementation(() => online);
  s = testServices(alice, {});
});
afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

function render(): HTMLElement {
  mounted = mount(
    <AppProvider services={s}>
      <ConnectionBanner />
    </AppProvider>,
  );
  const banner = mounted.host.querySelector<HTMLElement>(".conn-banner");
  if (!banner) throw new Error("no banner");
  return banner;
}

function goOffline(): void {
  online = false;
  act(() => {
    window.dispatchEvent(new Event("offline"));
  });
}

function goOnline(): void {
  online = true;
  act(() => {
    window.dispatchEvent(new Event("online"));
  });
}

describe("ConnectionBanner", () => {
  it("shows nothing while connected and online", () => {
    const banner = render();
    socketReady(s, alice);
    expect(banner.classList.contains("is-visible")).toBe(false);
    expect(banner.textContent).toBe("");
  });

  it("says offline as soon as the browser is offline, even while the socket is still open", () => {
    const banner = render();
    socketReady(s, alice);
    goOffline();
    expect(s.socket.getState().status).toBe("open");
    expect(banner.classList.contains("is-visible")).toBe(true);
    expect(banner.textContent).toContain("You're offline");
  });

  it("is offline from the start when the page loads without a network", () => {
    online = false;
    const banner = render();
    expect(banner.classList.contains("is-visible")).toBe(true);
    expect(banner.textContent).toContain("You're offline");
  });

  it("back online: the notice goes and a fresh connection replaces the one that lived through the outage", () => {
    const banner = render();
    socketReady(s, alice);
    const before = s.net.last;
    goOffline();
    goOnline();
    expect(banner.textContent).not.toContain("offline");
    expect(before.closed).not.toBeNull();
    expect(s.net.sockets).toHaveLength(2);
    expect(s.socket.getState().status).toBe("connecting");
    socketReady(s, alice);
    expect(s.socket.getState().status).toBe("open");
    expect(banner.classList.contains("is-visible")).toBe(false);
  });

  it("back online while waiting to reconnect: connects at once instead of waiting out the backoff", () => {
    const banner = render();
    socketReady(s, alice);
    goOffline();
    act(() => s.net.last.serverClose());
    expect(s.socket.getState().status).toBe("waiting");
    expect(banner.textContent).toContain("You're offline");
    expect(banner.querySelector("button")).toBeNull();
    goOnline();
    expect(s.net.sockets).toHaveLength(2);
    expect(s.socket.getState().status).toBe("connecting");
  });

  it("says nothing once logged out, offline or not", () => {
    const banner = render();
    socketReady(s, alice);
    act(() => s.session.clear("logout"));
    goOffline();
    expect(banner.classList.contains("is-visible")).toBe(false);
  });
});
