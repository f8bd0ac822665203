// @vitest-environment jsdom
import { act } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { createApiClient } from "../../../lib/api-client";
import { ServicesProvider } from "../../../lib/services";
import { alice } from "../../../test/fakes";
import { mount, settle, testServices, type Mounted } from "../../../test/services";
import type { AccountSession } from "../api";
import { useSessions, type SessionsApi } from "./useSessions";

const at = (min: number) => new Date(Date.UTC(2026, 0, 2, 12, min)).toISOString();
const LIST: AccountSession[] = [
  { id: 11, created_at: at(0), last_seen_at: at(9), user_agent: null, ip: "203.0.113.7", current: true },
  { id: 12, created_at: at(0), last_seen_at: at(5), user_agent: null, ip: "203.0.113.8", current: false },
  { id: 13, created_at: at(0), last_seen_at: at(1), user_agent: null, ip: "203.0.113.9", current: false },
];

let latest: SessionsApi | null = null;
function Probe() {
  latest = useSessions();
  return null;
}
let mounted: Mounted | null = null;
afterEach(() => {
  mounted?.unmount();
  mounted = null;
  latest = null;
});

/** The hook over a server that answers DELETE /api/sessions/{id} with `deleteStatus`. */
async function withServer(deleteStatus: number): Promise<{ release: () => void; calls: string[] }> {
  const base = testServices(alice, {});
  const calls: string[] = [];
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const fetchFake = async (input: RequestInfo | URL): Promise<Response> => {
    const req = input instanceof Request ? input : new Request(input);
    const key = `${req.method} ${new URL(req.url).pathname}`;
    calls.push(key);
    if (key === "GET /api/sessions") return new Response(JSON.stringify(LIST), { status: 200, headers: { "Content-Type": "application/json" } });
    if (key.startsWith("DELETE /api/sessions/")) {
      await gate;
      if (deleteStatus === 204) return new Response(null, { status: 204 });
      return new Response(JSON.stringify({ error: { code: "internal", message: "database is busy" } }), {
        status: deleteStatus,
        headers: { "Content-Type": "application/json" },
      });
    }
    if (key === "POST /api/sessions/revoke-others") return new Response(null, { status: 204 });
    return new Response("{}", { status: 404 });
  };
  const services = { ...base, api: createApiClient(base.session, { baseUrl: "http://test", fetch: fetchFake }) };
  mounted = mount(
    <ServicesProvider value={services}>
      <Probe />
    </ServicesProvider>,
  );
  await settle();
  return { release, calls };
}

const ids = () => latest?.list.map((s) => s.id);

describe("useSessions", () => {
  it("loads the list when it opens", async () => {
    const { calls } = await withServer(204);
    expect(calls).toEqual(["GET /api/sessions"]);
    expect(latest?.status).toBe("ready");
    expect(ids()).toEqual([11, 12, 13]);
  });

  it("removes a session at once and keeps it removed when the server agrees", async () => {
    const { release, calls } = await withServer(204);
    let done: Promise<void> = Promise.resolve();
    act(() => {
      done = latest!.end(12);
    });
    expect(ids()).toEqual([11, 13]);
    release();
    await act(() => done);
    expect(ids()).toEqual([11, 13]);
    expect(latest?.error).toBeNull();
    expect(calls).toContain("DELETE /api/sessions/12");
  });

  it("puts it back in its place, with the reason, when the server refuses", async () => {
    const { release } = await withServer(500);
    let done: Promise<void> = Promise.resolve();
    act(() => {
      done = latest!.end(12);
    });
    expect(ids()).toEqual([11, 13]);
    release();
    await act(() => done);
    expect(ids()).toEqual([11, 12, 13]);
    expect(latest?.error).toMatch(/^Couldn.t log out that device\. Database is busy/u);
  });

  it("log out everywhere else keeps only this device", async () => {
    await withServer(204);
    await act(() => latest!.endOthers());
    expect(ids()).toEqual([11]);
  });
});
