import { describe, expect, it } from "vitest";
import type { Attachment, Message } from "../api/types";
import {
  attachmentSummary,
  attachmentsOf,
  extensionOf,
  fileBadge,
  fileKind,
  fitBox,
  formatBytes,
  graphemes,
  gridLayout,
  isPhoto,
  messagePreview,
  middleTruncate,
  fitName,
} from "./attachments";
import { file, photo } from "../test/fakes";

describe("formatBytes", () => {
  it("says bytes, then KB, MB, GB with one decimal under 10", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1)).toBe("1 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1024)).toBe("1 KB");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(10 * 1024)).toBe("10 KB");
    expect(formatBytes(123_456)).toBe("121 KB");
    expect(formatBytes(2_400_000)).toBe("2.3 MB");
    expect(formatBytes(25 * 1024 * 1024)).toBe("25 MB");
    expect(formatBytes(3 * 1024 ** 3)).toBe("3 GB");
  });

  it("never shows 1024 of a unit: it rounds up to the next one", () => {
    expect(formatBytes(1024 * 1024 - 1)).toBe("1 MB");
    expect(formatBytes(1024 * 1023.7)).toBe("1 MB");
  });

  it("shows nothing for a size that is not one", () => {
    expect(formatBytes(-1)).toBe("");
    expect(formatBytes(Number.NaN)).toBe("");
  });
});

describe("names", () => {
  it("finds the extension only where there is one", () => {
    expect(extensionOf("report.pdf")).toBe(".pdf");
    expect(extensionOf("archive.tar.gz")).toBe(".gz");
    expect(extensionOf("README")).toBe("");
    expect(extensionOf(".bashrc")).toBe("");
    expect(extensionOf("notes.")).toBe("");
    expect(extensionOf("my file.with spaces")).toBe("");
  });

  it("cuts a long name in the middle, keeping the extension and no stray dash or space", () => {
    expect(middleTruncate("very-long-name-of-the-quarterly-report-2026.pdf", 24)).toBe("very-long-name…2026.pdf");
    expect(middleTruncate("Quarterly report final version 2026.pdf", 22)).toBe("Quarterly rep…2026.pdf");
    expect(middleTruncate("Quarterly report final version 2026.pdf", 26)).toBe("Quarterly report…2026.pdf");
    const cut = middleTruncate("Holiday photos from the summer trip to Lisbon and Porto 2026-07.zip", 30);
    expect(cut).toBe("Holiday photos fro…2026-07.zip");
    expect(cut.endsWith("2026-07.zip")).toBe(true);
    expect(cut).not.toMatch(/[\s\-_]…|…[\s\-_]/u);
    expect(graphemes(cut).length).toBeLessThanOrEqual(30);
  });

  it("keeps as much of the start as of the end when short of room", () => {
    const name = "Relatório de despesas da viagem — agosto 2026 (versão final).pdf";
    expect(middleTruncate(name, 30)).toBe("Relatório de despes…final).pdf");
    // The tail gives back "fi" rather than leave four letters of the start…
    expect(middleTruncate(name, 15)).toBe("Relató…nal).pdf");
    // …but keeps its whole word when the start still has six.
    expect(middleTruncate("Pastéis de nata 🥮.png", 17)).toBe("Pastéi…nata 🥮.png");
  });

  it("leaves no dash of any length against the cut", () => {
    expect(middleTruncate("CP tickets — Porto São Bento → Pinhão (2 adults, return) 15-07-2026.pdf", 21)).toBe("CP tickets…2026.pdf");
  });

  it("leaves a short name alone", () => {
    expect(middleTruncate("cv.pdf", 24)).toBe("cv.pdf");
    expect(middleTruncate("exactly-twenty-four.pdf", 23)).toBe("exactly-twenty-four.pdf");
  });

  it("never splits an emoji, and cuts Arabic names the same way", () => {
    const name = "👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦 family reunion pictures 🎉🎉.zip";
    const cut = middleTruncate(name, 16);
    expect(cut.startsWith("👨‍👩‍👧‍👦👨‍👩‍👧‍👦")).toBe(true);
    expect(cut.endsWith("🎉🎉.zip")).toBe(true);
    expect(graphemes(cut).every((g) => name.includes(g) || g === "…")).toBe(true);
    const arabic = middleTruncate("تقرير الرحلة إلى لشبونة وبورتو النهائي 2026.pdf", 24);
    expect(arabic.endsWith("2026.pdf")).toBe(true);
    expect(arabic).toContain("…");
  });

  it("fits a name to a width: whole when it fits, else cut in the middle as little as needed", () => {
    // One unit per character (an emoji counts as one).
    const measure = (t: string) => graphemes(t).length;
    const name = "very-long-name-of-the-quarterly-report-2026.pdf";
    expect(fitName("cv.pdf", 10, measure)).toBe("cv.pdf");
    expect(fitName(name, 47, measure)).toBe(name);
    const cut = fitName(name, 24, measure);
    expect(cut).toBe("very-long-name…2026.pdf");
    // As long as the width allows: one more character would not fit.
    const longer = fitName(name, 30, measure);
    expect(graphemes(longer).length).toBeLessThanOrEqual(30);
    expect(graphemes(longer).length).toBeGreaterThanOrEqual(28);
    expect(longer.endsWith("2026.pdf")).toBe(true);
    // Wider characters take more room: fewer of them fit.
    const wide = (t: string) => graphemes(t).reduce((w, g) => w + (/\p{Extended_Pictographic}/u.test(g) ? 2 : 1), 0);
    const emoji = fitName("🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉 party photos 🎉.zip", 20, wide);
    expect(wide(emoji)).toBeLessThanOrEqual(20);
    expect(emoji.endsWith("🎉.zip")).toBe(true);
    // Too narrow for anything sensible: the shortest cut, for the box's own "…" to finish.
    expect(graphemes(fitName(name, 2, measure)).length).toBeLessThanOrEqual(6);
  });
});

describe("kinds", () => {
  it("tells photos from files: only what the server decoded is a photo", () => {
    expect(isPhoto(photo())).toBe(true);
    expect(isPhoto(file())).toBe(false);
    expect(isPhoto({ ...photo(), thumbnail_url: null, width: null, height: null })).toBe(false);
  });

  it("picks an icon by the detected type, else by the extension", () => {
    expect(fileKind("x.bin", "application/pdf")).toBe("pdf");
    expect(fileKind("clip.mov", "video/quicktime")).toBe("video");
    expect(fileKind("song.flac", "audio/flac")).toBe("audio");
    expect(fileKind("backup.zip", "application/zip")).toBe("archive");
    expect(fileKind("budget.xlsx", "application/octet-stream")).toBe("sheet");
    expect(fileKind("talk.pptx", "application/octet-stream")).toBe("slides");
    expect(fileKind("letter.docx", "application/octet-stream")).toBe("doc");
    expect(fileKind("notes", "text/plain")).toBe("text");
    expect(fileKind("main.rs", "text/plain")).toBe("code");
    expect(fileKind("mystery", "application/octet-stream")).toBe("file");
    expect(fileBadge("letter.docx")).toBe("DOCX");
    expect(fileBadge("data.numbers")).toBe("FILE");
    expect(fileBadge("README")).toBe("FILE");
  });
});

describe("one line for a message", () => {
  const m = (body: string, attachments: Attachment[], deleted = false) => ({ body, attachments, deleted_at: deleted ? "2026-01-01T00:00:00Z" : null });

  it("is the text when there is any", () => {
    expect(messagePreview(m("Look at this!", [photo()]))).toBe("Look at this!");
  });

  it("says Photo, N photos, or the first file's name", () => {
    expect(messagePreview(m("", [photo()]))).toBe("🖼 Photo");
    expect(messagePreview(m("  ", [photo(), photo(), photo()]))).toBe("🖼 3 photos");
    expect(messagePreview(m("", [file("report.pdf")]))).toBe("📎 report.pdf");
    expect(messagePreview(m("", [photo(), file("report.pdf"), file("b.zip", "application/zip")]))).toBe("📎 report.pdf and 2 more");
    // An image the server could not decode is a file.
    expect(attachmentSummary([{ ...photo(), name: "broken.heic", thumbnail_url: null, width: null, height: null }])).toBe("📎 broken.heic");
    expect(attachmentSummary([])).toBe("");
  });

  it("cuts a long file name in the middle", () => {
    const line = attachmentSummary([file("very-long-name-of-the-quarterly-report-for-the-board-2026.pdf")]);
    expect(line).toBe("📎 very-long-name-of-t…2026.pdf");
  });

  it("shows nothing of a deleted message's attachments", () => {
    expect(messagePreview(m("", [photo()], true))).toBe("message deleted");
    expect(attachmentsOf(m("", [photo()], true))).toEqual([]);
    // A server from before attachments sends none at all.
    expect(attachmentsOf({ deleted_at: null } as Pick<Message, "attachments" | "deleted_at">)).toEqual([]);
  });
});

describe("boxes for photos", () => {
  it("keeps the shape and scales down to fit", () => {
    expect(fitBox(4032, 3024)).toEqual({ width: 320, height: 240, cropped: false });
    expect(fitBox(3024, 4032)).toEqual({ width: 270, height: 360, cropped: false });
    expect(fitBox(1000, 1000)).toEqual({ width: 320, height: 320, cropped: false });
  });

  it("never scales a small photo up", () => {
    expect(fitBox(200, 150)).toEqual({ width: 200, height: 150, cropped: false });
  });

  it("holds a panorama and a very tall photo at the minimum, cropped", () => {
    expect(fitBox(8000, 1000)).toEqual({ width: 320, height: 96, cropped: true });
    expect(fitBox(600, 4000)).toEqual({ width: 120, height: 360, cropped: true });
    expect(fitBox(40, 20)).toEqual({ width: 120, height: 96, cropped: true });
  });

  it("gives a square when the size is unknown", () => {
    expect(fitBox(0, 0)).toEqual({ width: 320, height: 320, cropped: true });
  });

  it("lays several photos out in full rows", () => {
    expect(gridLayout(1)).toEqual({ columns: 1, rows: 1, firstSpan: 1 });
    expect(gridLayout(2)).toEqual({ columns: 2, rows: 1, firstSpan: 1 });
    expect(gridLayout(3)).toEqual({ columns: 2, rows: 2, firstSpan: 2 });
    expect(gridLayout(4)).toEqual({ columns: 2, rows: 2, firstSpan: 1 });
    expect(gridLayout(5)).toEqual({ columns: 3, rows: 2, firstSpan: 2 });
    expect(gridLayout(7)).toEqual({ columns: 3, rows: 3, firstSpan: 3 });
    expect(gridLayout(10)).toEqual({ columns: 3, rows: 4, firstSpan: 3 });
    for (let k = 2; k <= 10; k++) {
      const g = gridLayout(k);
      expect(k - 1 + g.firstSpan).toBe(g.columns * g.rows);
    }
  });
});
