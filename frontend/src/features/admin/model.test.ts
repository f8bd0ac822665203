import { describe, expect, it } from "vitest";
import { appendPage, describeAudit, formatCount, formatTime, replaceById, userStatus } from "./model";

describe("admin model", () => {
  it("describes audit entries, the command line included", () => {
    expect(describeAudit({ action: "user.deactivate", actor_username: "root", detail: "@bob" })).toBe("root deactivated @bob");
    expect(describeAudit({ action: "user.grant_admin", actor_username: null, detail: "@root" })).toBe(
      "command line made admin @root",
    );
    expect(describeAudit({ action: "something.new", actor_username: "a", detail: "x" })).toBe("a something.new x");
  });

  it("labels user status, deactivation first", () => {
    expect(userStatus({ deactivated_at: "2026-01-01T00:00:00Z", online: true })).toBe("deactivated");
    expect(userStatus({ deactivated_at: null, online: true })).toBe("online");
    expect(userStatus({ online: false })).toBe("offline");
  });

  it("appends pages without duplicates and replaces by id", () => {
    const a = [{ id: 1, v: "a" }, { id: 2, v: "b" }];
    expect(appendPage(a, [{ id: 2, v: "x" }, { id: 3, v: "c" }]).map((x) => x.id)).toEqual([1, 2, 3]);
    expect(replaceById(a, { id: 2, v: "z" })).toEqual([{ id: 1, v: "a" }, { id: 2, v: "z" }]);
  });

  it("formats counts and times", () => {
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatTime(null)).toBe("—");
    expect(formatTime("nonsense")).toBe("—");
    expect(formatTime("2026-11-25T13:05:00Z")).toMatch(/^2026-11-2\d \d\d:\d\d$/);
  });
});
