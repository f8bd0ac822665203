import { describe, expect, it, vi } from "vitest";
import { alice } from "../test/fakes";
import { createApiClient } from "./api-client";
import { SessionStore } from "./session";
import { MemoryStorage } from "../test/storage";

describe("SessionStore", () => {
  it("survives a reload through storage and ends cleanly", () => {
    const ls = new MemoryStorage();
    const ss = new MemoryStorage();
    const s1 = new SessionStore(ls, ss);
    const seen = vi.fn();
    s1.subscribe(seen);
    s1.set({ token: "t", user: alice });
    expect(new SessionStore(ls, ss).get()).toEqual({ token: "t", user: alice });
    s1.clear("expired");
    expect(seen).toHaveBeenCalledTimes(2);
    const s2 = new SessionStore(ls, ss);
    expect(s2.get()).toBeNull();
    expect(s2.endReason()).toBe("expired");
    s2.set({ token: "t2", user: alice });
    expect(new SessionStore(ls, ss).endReason()).toBeNull();
  });

  it("ignores garbage in storage", () => {
    const ls = new MemoryStorage();
    ls.setItem("letschat.session", "{not json");
    expect(new SessionStore(ls).get()).toBeNull();
    ls.setItem("letschat.session", JSON.stringify({ token: 1 }));
    expect(new SessionStore(ls).get()).toBeNull();
  });
});

describe("api client", () => {
  function setup(status: number, body: unknown = {}) {
    const session = new SessionStore(new MemoryStorage());
    session.set({ token: "tok", user: alice });
    const calls: Request[] = [];
    const fetchFn = vi.fn(async (input: Request) => {
      calls.push(input);
      return new Response(status === 204 ? null : JSON.stringify(body), {
        status,
        headers: { "Content-Type": "application/json" },
      });
    });
    const api = createApiClient(session, { baseUrl: "http://test", fetch: fetchFn as unknown as typeof fetch });
    return { session, api, calls };
  }

  it("sends the bearer token", async () => {
    const { api, calls } = setup(200, alice);
    const r = await api.GET("/api/me");
    expect(r.data).toEqual(alice);
    expect(calls[0]?.headers.get("Authorization")).toBe("Bearer tok");
  });

  it("logs out on a 401 from any endpoint", async () => {
    const { api, session } = setup(401, { error: { code: "unauthorized", message: "token revoked" } });
    await api.GET("/api/contacts");
    expect(session.get()).toBeNull();
    expect(session.endReason()).toBe("expired");
  });

  it("does not log out on a wrong password at login", async () => {
    const { api, session } = setup(401, { error: { code: "unauthorized", message: "wrong" } });
    await api.POST("/api/auth/login", { body: { username: "a", password: "b" } });
    expect(session.get()).not.toBeNull();
  });
});

describe("SessionStore.updateUser", () => {
  it("takes a new display name for the same user, keeps the token, and tells listeners", () => {
    const ls = new MemoryStorage();
    const s = new SessionStore(ls);
    s.set({ token: "t", user: alice });
    const seen = vi.fn();
    s.subscribe(seen);
    s.updateUser({ ...alice, display_name: "Alice L." });
    expect(s.get()).toEqual({ token: "t", user: { ...alice, display_name: "Alice L." } });
    expect(new SessionStore(ls).get()?.user.display_name).toBe("Alice L.");
    s.updateUser({ ...alice, display_name: "Alice L." });
    s.updateUser({ ...alice, id: alice.id + 100, display_name: "Someone else" });
    expect(seen).toHaveBeenCalledTimes(1);
  });

  it("remembers that the account was deleted, for the login page", () => {
    const ls = new MemoryStorage();
    const ss = new MemoryStorage();
    const s = new SessionStore(ls, ss);
    s.set({ token: "t", user: alice });
    s.clear("deleted");
    expect(new SessionStore(ls, ss).endReason()).toBe("deleted");
  });
});
