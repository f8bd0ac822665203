import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../test/storage";
import { deviceTokenFor, rememberDeviceToken } from "./deviceTokens";

describe("device tokens", () => {
  it("are kept per username, case-insensitively, newest replacing older", () => {
    const s = new MemoryStorage();
    expect(deviceTokenFor("alice", s)).toBeUndefined();
    rememberDeviceToken("Alice", "t1", s);
    rememberDeviceToken("bob", "b1", s);
    rememberDeviceToken("alice", "t2", s);
    expect(deviceTokenFor(" ALICE ", s)).toBe("t2");
    expect(deviceTokenFor("bob", s)).toBe("b1");
    rememberDeviceToken("bob", null, s);
    expect(deviceTokenFor("bob", s)).toBe("b1");
  });

  it("keep at most twenty accounts and survive garbage in storage", () => {
    const s = new MemoryStorage();
    for (let i = 0; i < 25; i++) rememberDeviceToken(`user${i}`, `t${i}`, s);
    expect(deviceTokenFor("user24", s)).toBe("t24");
    expect(deviceTokenFor("user5", s)).toBe("t5");
    expect(deviceTokenFor("user4", s)).toBeUndefined();
    s.setItem("letschat.deviceTokens", "{not json");
    expect(deviceTokenFor("user24", s)).toBeUndefined();
    rememberDeviceToken("carol", "c", s);
    expect(deviceTokenFor("carol", s)).toBe("c");
  });
});
