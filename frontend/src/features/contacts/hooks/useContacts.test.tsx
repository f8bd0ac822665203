// @vitest-environment jsdom
import { afterEach, describe, expect, it } from "vitest";
import type { Contact } from "../../../api/types";
import { ServicesProvider } from "../../../lib/services";
import { alice, bob, msg } from "../../../test/fakes";
import { mount, serverSends, settle, socketReady, testServices, type Mounted, type TestServices } from "../../../test/services";
import { useContacts, type ContactsApi } from "./useContacts";

const ROOM = 20;
const bobContact = (): Contact => ({ user: bob, room_id: ROOM, last_message: msg(ROOM, 1, bob.id), unread_count: 1, online: true });

let latest: ContactsApi | null = null;
function Probe() {
  latest = useContacts(null);
  return null;
}
function current(): ContactsApi {
  if (!latest) throw new Error("the hook has not rendered");
  return latest;
}

let mounted: Mounted | null = null;
afterEach(() => {
  mounted?.unmount();
  mounted = null;
  latest = null;
});

/** alice's contacts hook, connected, with the list the server answers with. */
async function connected(contacts: () => Contact[]): Promise<TestServices> {
  const s = testServices(alice, { "GET /api/contacts": contacts });
  mounted = mount(
    <ServicesProvider value={s}>
      <Probe />
    </ServicesProvider>,
  );
  s.socket.start("tok-test");
  socketReady(s, alice);
  await settle();
  return s;
}

describe("useContacts typing", () => {
  it("clears typing when a new contact's first message arrives, before their row is loaded", async () => {
    let known = false;
    const s = await connected(() => (known ? [bobContact()] : []));
    expect(current().contacts).toEqual([]);

    // bob added alice and types his first message: his room is not in her list yet.
    serverSends(s, { type: "typing", room_id: ROOM, user_id: bob.id });
    expect(current().typingRooms.has(ROOM)).toBe(true);

    known = true;
    serverSends(s, { type: "message", message: msg(ROOM, 1, bob.id) });
    expect(current().typingRooms.has(ROOM)).toBe(false);
    await settle();
    expect(current().contacts.map((c) => c.room_id)).toEqual([ROOM]);
    expect(current().typingRooms.has(ROOM)).toBe(false);
  });

  it("clears typing when a known contact's message arrives", async () => {
    const s = await connected(() => [bobContact()]);
    serverSends(s, { type: "typing", room_id: ROOM, user_id: bob.id });
    expect(current().typingRooms.has(ROOM)).toBe(true);
    serverSends(s, { type: "message", message: msg(ROOM, 2, bob.id) });
    expect(current().typingRooms.has(ROOM)).toBe(false);
    expect(current().contacts[0]?.unread_count).toBe(2);
  });
});
