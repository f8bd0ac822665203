// @vitest-environment jsdom
import { act } from "react";
import { afterEach, describe, expect, it } from "vitest";
import type { Attachment } from "../../../api/types";
import { file, msg, photo } from "../../../test/fakes";
import { mount, type Mounted } from "../../../test/services";
import { buildItems } from "../model";
import { Bubble, type MessageHandlers } from "./Bubble";

const handlers: MessageHandlers = {
  nameOf: () => "Bob",
  onRetry: () => undefined,
  onDiscard: () => undefined,
  onReply: () => undefined,
  onStartEdit: () => undefined,
  onCancelEdit: () => undefined,
  onSaveEdit: async () => undefined,
  onDelete: () => undefined,
  onReact: () => undefined,
  onJumpTo: () => undefined,
};

let mounted: Mounted | null = null;
afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

function render(body: string, attachments: Attachment[], extra: Parameters<typeof msg>[3] = {}): HTMLElement {
  const [item] = buildItems([msg(7, 1, 2, { body, attachments, ...extra })], [], 1, 0);
  if (!item) throw new Error("no item");
  mounted = mount(<Bubble item={item} position="single" editing={false} highlighted={false} handlers={handlers} />);
  return mounted.host;
}

const press = (el: Element, key: string, shiftKey = false) =>
  act(() => {
    el.dispatchEvent(new KeyboardEvent("keydown", { key, shiftKey, bubbles: true }));
  });

describe("attachments in a message", () => {
  it("shows a photo alone in a box sized from its width and height, with no empty text and the time on the photo", () => {
    const host = render("", [photo(4032, 3024, "IMG_2041.jpg")]);
    const box = host.querySelector<HTMLElement>(".media--single");
    expect(box?.style.width).toBe("320px");
    expect(box?.style.aspectRatio).toBe("320 / 240");
    const img = box?.querySelector("img");
    expect(img?.getAttribute("src")).toMatch(/\/thumbnail\?/u);
    expect(host.querySelector(".msg__text")).toBeNull();
    expect(host.querySelector(".msg__caption")).toBeNull();
    expect(host.querySelector(".msg__meta.is-overlay")).not.toBeNull();
    expect(host.querySelector(".media__tile")?.getAttribute("aria-label")).toBe("Open photo IMG_2041.jpg");
  });

  it("keeps a caption under the photo, in a bubble as wide as the photo", () => {
    const host = render("Sunset over the lake 🌅", [photo(600, 4000, "tall.jpg")]);
    const bubble = host.querySelector<HTMLElement>(".msg__bubble");
    // A tall photo with text is held at a readable width, cropped.
    expect(bubble?.style.getPropertyValue("--media-width")).toBe("240px");
    expect(host.querySelector(".media--single")?.getAttribute("data-box")).toBe("240x360");
    expect(host.querySelector(".msg__caption .msg__text")?.textContent).toBe("Sunset over the lake 🌅");
    expect(host.querySelector(".msg__meta.is-overlay")).toBeNull();
  });

  it("lays several photos out in a grid whose shape is known before they load", () => {
    const host = render("", [photo(), photo(), photo()]);
    const grid = host.querySelector<HTMLElement>(".media--grid");
    expect(grid?.style.aspectRatio).toBe("2 / 2");
    const tiles = grid?.querySelectorAll<HTMLElement>(".media__tile") ?? [];
    expect(tiles).toHaveLength(3);
    expect(tiles[0]?.style.gridColumn).toBe("span 2");
    expect(tiles[1]?.getAttribute("aria-label")).toBe("Open photo 2 of 3, IMG_0001.jpg");
  });

  it("shows a file as a card that downloads it under its own name, the name cut in the middle", () => {
    const name = "very-long-name-of-the-quarterly-report-2026.pdf";
    const host = render("", [file(name, "application/pdf", 2_400_000)]);
    const link = host.querySelector<HTMLAnchorElement>(".file-card a");
    expect(link?.getAttribute("href")).toMatch(/^\/api\/files\//u);
    expect(link?.getAttribute("download")).toBe(name);
    expect(link?.getAttribute("aria-label")).toBe(`Download ${name}, 2.3 MB`);
    const card = host.querySelector(".file-card");
    // Not laid out here, so the whole name; a screen reader always hears all of it.
    expect(card?.querySelector(".file-name__shown")?.textContent).toBe(name);
    expect(card?.querySelector(".file-name__shown")?.getAttribute("aria-hidden")).toBe("true");
    expect(card?.querySelector(".file-name .sr-only")?.textContent).toBe(name);
    expect(card?.querySelector(".file-card__size")?.textContent).toBe("2.3 MB");
    expect(card?.querySelector(".file-icon")?.getAttribute("aria-hidden")).toBe("true");
    expect(card?.querySelector(".file-icon__label")?.textContent).toBe("PDF");
    // Files alone: the time is under the cards, and there is no empty text.
    expect(host.querySelector(".msg__text")).toBeNull();
    expect(host.querySelector(".msg__caption .msg__meta")).not.toBeNull();
  });

  it("shows nothing of a deleted message's attachments", () => {
    const host = render("", [photo(), file()], { deleted_at: "2026-01-01T12:00:00Z" });
    expect(host.querySelector(".media, .file-card")).toBeNull();
    expect(host.querySelector(".msg__deleted")?.textContent).toBe("message deleted");
  });

  it("opens a photo full size in a lightbox that keeps the focus and gives it back on Escape", () => {
    const host = render("", [photo(1600, 1200, "a.jpg"), photo(800, 1200, "b.jpg")]);
    const second = host.querySelectorAll<HTMLButtonElement>(".media__tile")[1];
    second?.focus();
    act(() => second?.click());
    const box = document.querySelector<HTMLElement>(".lightbox");
    expect(box?.getAttribute("role")).toBe("dialog");
    expect(box?.getAttribute("aria-modal")).toBe("true");
    expect(box?.getAttribute("aria-label")).toBe("Photo 2 of 2: b.jpg");
    const img = box?.querySelector("img");
    expect(img?.getAttribute("src")).not.toMatch(/thumbnail/u);
    expect(img?.getAttribute("alt")).toBe("b.jpg");
    expect(document.activeElement?.getAttribute("aria-label")).toBe("Close photo");
    // Tab from the last control comes back to the first.
    const controls = Array.from(box?.querySelectorAll<HTMLElement>("a[href], button") ?? []);
    controls[controls.length - 1]?.focus();
    if (box) press(box, "Tab");
    expect(document.activeElement).toBe(controls[0]);
    // The arrows go through the message's photos.
    if (box) press(box, "ArrowRight");
    expect(document.querySelector(".lightbox")?.getAttribute("aria-label")).toBe("Photo 1 of 2: a.jpg");
    if (box) press(box, "Escape");
    expect(document.querySelector(".lightbox")).toBeNull();
    expect(document.activeElement).toBe(second);
  });

  it("closes the lightbox on a click beside the photo, not on the photo", () => {
    const host = render("", [photo()]);
    act(() => host.querySelector<HTMLButtonElement>(".media__tile")?.click());
    act(() => document.querySelector<HTMLElement>(".lightbox__img")?.click());
    expect(document.querySelector(".lightbox")).not.toBeNull();
    act(() => document.querySelector<HTMLElement>(".lightbox__stage")?.click());
    expect(document.querySelector(".lightbox")).toBeNull();
  });

  it("says so when the full photo cannot be loaded (its link expired)", () => {
    const host = render("", [photo()]);
    act(() => host.querySelector<HTMLButtonElement>(".media__tile")?.click());
    act(() => {
      document.querySelector(".lightbox__img")?.dispatchEvent(new Event("error"));
    });
    expect(document.querySelector('.lightbox [role="alert"]')?.textContent).toMatch(/^Couldn't load the full photo/u);
    act(() => document.querySelector<HTMLButtonElement>('[aria-label="Close photo"]')?.click());
  });

  it("shows a placeholder in the photo's box when its thumbnail cannot be loaded", () => {
    const host = render("", [photo(800, 600, "gone.jpg")]);
    act(() => {
      host.querySelector(".media__tile img")?.dispatchEvent(new Event("error"));
    });
    expect(host.querySelector(".media__tile.is-broken")?.textContent).toBe("Photo unavailable");
    expect(host.querySelector<HTMLElement>(".media--single")?.style.width).toBe("320px");
  });
});
