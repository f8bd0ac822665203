import { describe, expect, it } from "vitest";
import { documentTitle, formatDayLabel, formatListTime, hueFor, initials, linkify } from "./format";

describe("linkify", () => {
  it("keeps plain text as one part", () => {
    expect(linkify("hello <b>there</b>")).toEqual([{ kind: "text", text: "hello <b>there</b>" }]);
  });

  it("finds http and https links and leaves the rest as text", () => {
    expect(linkify("see https://example.com/a?b=1 and http://x.org")).toEqual([
      { kind: "text", text: "see " },
      { kind: "link", text: "https://example.com/a?b=1", href: "https://example.com/a?b=1" },
      { kind: "text", text: " and " },
      { kind: "link", text: "http://x.org", href: "http://x.org/" },
    ]);
  });

  it("turns www. into https", () => {
    expect(linkify("www.example.com")).toEqual([{ kind: "link", text: "www.example.com", href: "https://www.example.com/" }]);
  });

  it("never links other schemes", () => {
    for (const t of ["javascript:alert(1)", "data:text/html,<script>", "ftp://host/file", "JaVaScRiPt:alert(1)"]) {
      expect(linkify(t).every((p) => p.kind === "text")).toBe(true);
    }
  });

  it("leaves sentence punctuation and unbalanced brackets outside the link", () => {
    expect(linkify("Go to https://example.com/x.")).toEqual([
      { kind: "text", text: "Go to " },
      { kind: "link", text: "https://example.com/x", href: "https://example.com/x" },
      { kind: "text", text: "." },
    ]);
    expect(linkify("(see https://en.wikipedia.org/wiki/Foo_(bar))")).toEqual([
      { kind: "text", text: "(see " },
      { kind: "link", text: "https://en.wikipedia.org/wiki/Foo_(bar)", href: "https://en.wikipedia.org/wiki/Foo_(bar)" },
      { kind: "text", text: ")" },
    ]);
  });

  it("does not let quotes or angle brackets into a link", () => {
    const parts = linkify('x https://a.com/"onmouseover="alert(1) y');
    const link = parts.find((p) => p.kind === "link");
    expect(link?.text).toBe("https://a.com/");
  });

  it("keeps every character of the input", () => {
    const text = "a https://b.com, c (www.d.org) e\nhttps://f.io!";
    expect(linkify(text).map((p) => p.text).join("")).toBe(text);
  });
});

describe("initials and colours", () => {
  it("takes the first letters of the first and last word", () => {
    expect(initials("Ada Lovelace")).toBe("AL");
    expect(initials("bob")).toBe("B");
    expect(initials("  mary jane watson ")).toBe("MW");
    expect(initials("john.doe")).toBe("JD");
    expect(initials("émile zola")).toBe("ÉZ");
    expect(initials("")).toBe("?");
  });

  it("spreads hues of consecutive ids", () => {
    const hues = [1, 2, 3, 4].map((id) => hueFor(id));
    for (const h of hues) expect(h).toBeGreaterThanOrEqual(0);
    for (let i = 1; i < hues.length; i++) expect(Math.abs((hues[i] ?? 0) - (hues[i - 1] ?? 0))).toBeGreaterThan(30);
    expect(hueFor("alice")).toBe(hueFor("alice"));
  });
});

describe("times", () => {
  const now = new Date(2026, 4, 14, 15, 30); // Thursday 14 May 2026, local time
  const at = (d: number, h = 9, m = 5) => new Date(2026, 4, d, h, m).toISOString();

  it("formats the contacts list time by age", () => {
    expect(formatListTime(at(14), now, "en-GB")).toBe("09:05");
    expect(formatListTime(at(13), now, "en-GB")).toBe("Yesterday");
    expect(formatListTime(at(11), now, "en-GB")).toBe("Mon");
    expect(formatListTime(at(2), now, "en-GB")).toBe("2 May");
    expect(formatListTime(new Date(2025, 11, 31).toISOString(), now, "en-GB")).toBe("31 Dec 2025");
  });

  it("labels days in a conversation", () => {
    expect(formatDayLabel(at(14), now, "en-GB")).toBe("Today");
    expect(formatDayLabel(at(13), now, "en-GB")).toBe("Yesterday");
    expect(formatDayLabel(at(4), now, "en-GB")).toBe("Monday 4 May");
  });

  it("puts the unread count in the title", () => {
    expect(documentTitle(0)).toBe("Let's Chat");
    expect(documentTitle(3)).toBe("(3) Let's Chat");
    expect(documentTitle(250)).toBe("(99+) Let's Chat");
  });
});
