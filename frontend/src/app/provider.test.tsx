// @vitest-environment jsdom
import { act } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { alice, bob } from "../test/fakes";
import { mount, serverSends, settle, socketReady, testServices, type Mounted } from "../test/services";
import { AppProvider } from "./provider";

let mounted: Mounted | null = null;
afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

describe("AppProvider: the session follows the socket", () => {
  it("takes our own new display name from user_updated (and not someone else's)", async () => {
    const s = testServices(alice, {});
    mounted = mount(<AppProvider services={s}>{null}</AppProvider>);
    socketReady(s, alice);
    serverSends(s, { type: "user_updated", user: { ...bob, display_name: "Bobby" } });
    expect(s.session.get()?.user.display_name).toBe("Alice");
    serverSends(s, { type: "user_updated", user: { ...alice, display_name: "Alice Kingsleigh" } });
    expect(s.session.get()?.user.display_name).toBe("Alice Kingsleigh");
    expect(s.session.token()).toBe("tok-test");
    await settle();
  });

  it("asks the server whether the session still stands when the socket closes with 1008", async () => {
    const s = testServices(alice, {});
    mounted = mount(<AppProvider services={s}>{null}</AppProvider>);
    socketReady(s, alice);
    act(() => s.net.last.serverClose(1008));
    await settle();
    expect(s.calls).toContain("GET /api/me");
  });

  it("does not for an ordinary close", async () => {
    const s = testServices(alice, {});
    mounted = mount(<AppProvider services={s}>{null}</AppProvider>);
    socketReady(s, alice);
    act(() => s.net.last.serverClose(1001));
    await settle();
    expect(s.calls).not.toContain("GET /api/me");
  });
});
