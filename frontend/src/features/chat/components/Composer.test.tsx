// @vitest-environment jsdom
import { act, useRef } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AppProvider } from "../../../app/provider";
import { alice } from "../../../test/fakes";
import { mount, settle, testServices, type Mounted } from "../../../test/services";
import { useUploads } from "../hooks/useUploads";
import { Composer } from "./Composer";

/** Stands in for XMLHttpRequest: each upload the app starts is one of these, answered by the test. */
class FakeXhr {
  static all: FakeXhr[] = [];
  url = "";
  status = 0;
  responseText = "";
  aborted = false;
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  ontimeout: (() => void) | null = null;
  constructor() {
    FakeXhr.all.push(this);
  }
  open(_method: string, url: string) {
    this.url = url;
  }
  setRequestHeader() {}
  send() {}
  abort() {
    this.aborted = true;
    this.onabort?.();
  }
  answer(status: number, body: unknown) {
    act(() => {
      this.status = status;
      this.responseText = JSON.stringify(body);
      this.onload?.();
    });
  }
  progress(loaded: number, total: number) {
    act(() => this.upload.onprogress?.({ loaded, total, lengthComputable: true }));
  }
}

const stored = (id: string, name: string) => ({
  id,
  name,
  content_type: "application/pdf",
  size: 3,
  sha256: "f".repeat(64),
  width: null,
  height: null,
  url: `/api/files/${id}?e=1&s=x`,
  thumbnail_url: null,
});

let mounted: Mounted | null = null;
let sent: string[] = [];
beforeEach(() => {
  FakeXhr.all = [];
  sent = [];
  vi.stubGlobal("XMLHttpRequest", FakeXhr);
  // A phone-sized window: the box does not take the focus on its own.
  vi.stubGlobal("matchMedia", (query: string) => ({ matches: false, media: query, addEventListener() {}, removeEventListener() {} }));
});
afterEach(() => {
  mounted?.unmount();
  mounted = null;
  vi.unstubAllGlobals();
});

function Harness() {
  const uploads = useUploads();
  const inputRef = useRef<HTMLTextAreaElement>(null);
  return (
    <Composer
      peerName="Bob"
      roomId={7}
      reply={null}
      onCancelReply={() => undefined}
      onEditLast={() => false}
      onTyping={() => undefined}
      inputRef={inputRef}
      uploads={uploads}
      onSend={(body) => {
        sent.push(`${body}|${uploads.ready().map((u) => u.id).join(",")}`);
        uploads.clear();
      }}
    />
  );
}

function render(): HTMLElement {
  const s = testServices(alice, {});
  mounted = mount(
    <AppProvider services={s}>
      <Harness />
    </AppProvider>,
  );
  return mounted.host;
}

function pick(host: HTMLElement, ...names: string[]) {
  const input = host.querySelector<HTMLInputElement>('input[type="file"]');
  if (!input) throw new Error("no file input");
  const files = names.map((n) => new File(["abc"], n, { type: "application/pdf" }));
  Object.defineProperty(input, "files", { value: files, configurable: true });
  act(() => {
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
}

const item = (host: HTMLElement, name: string) => host.querySelector<HTMLElement>(`.tray-item[data-name="${name}"]`);
const sendButton = (host: HTMLElement) => host.querySelector<HTMLButtonElement>(".composer__send");
const click = (el: Element | null | undefined) => act(() => (el as HTMLElement | null)?.click());

describe("the composer with attachments", () => {
  it("uploads a picked file at once, shows its progress, and lets the message go once it is done", async () => {
    const host = render();
    pick(host, "plan.pdf");
    expect(FakeXhr.all).toHaveLength(1);
    expect(FakeXhr.all[0]?.url).toBe("/api/uploads");
    expect(item(host, "plan.pdf")?.dataset.status).toBe("uploading");
    expect(sendButton(host)?.disabled).toBe(true);
    expect(sendButton(host)?.getAttribute("aria-label")).toBe("Send message (waiting for a file to upload)");
    FakeXhr.all[0]?.progress(40, 100);
    expect(item(host, "plan.pdf")?.querySelector('[role="progressbar"]')?.getAttribute("aria-valuenow")).toBe("40");
    expect(item(host, "plan.pdf")?.textContent).toContain("40% of 3 B");
    FakeXhr.all[0]?.answer(201, stored("a1", "plan.pdf"));
    await settle();
    expect(item(host, "plan.pdf")?.dataset.status).toBe("done");
    expect(sendButton(host)?.disabled).toBe(false);
    expect(host.querySelector(".tray .sr-only[aria-live]")?.textContent).toBe("1 of 1 file uploaded");
    // No text needed: the file is the message.
    click(sendButton(host));
    expect(sent).toEqual(["|a1"]);
    expect(host.querySelector(".tray")).toBeNull();
  });

  it("shows a failure with the server's reason, retries it, and cancels an upload in progress", async () => {
    const host = render();
    pick(host, "big.pdf", "slow.pdf");
    expect(FakeXhr.all).toHaveLength(2);
    FakeXhr.all[0]?.answer(413, { error: { code: "payload_too_large", message: "the request body is larger than 26214400 bytes" } });
    await settle();
    const big = item(host, "big.pdf");
    expect(big?.dataset.status).toBe("failed");
    expect(big?.querySelector('[role="alert"]')?.textContent).toBe("Too large: the limit is 25 MB");
    expect(sendButton(host)?.disabled).toBe(true);

    // Cancel the other one while it uploads: the request is aborted and the file leaves the tray.
    click(item(host, "slow.pdf")?.querySelector('[aria-label="Cancel uploading slow.pdf"]'));
    expect(FakeXhr.all[1]?.aborted).toBe(true);
    expect(item(host, "slow.pdf")).toBeNull();

    // Retry starts a new upload of the same file.
    click(big?.querySelector('[aria-label="Retry uploading big.pdf"]'));
    expect(FakeXhr.all).toHaveLength(3);
    expect(item(host, "big.pdf")?.dataset.status).toBe("uploading");
    FakeXhr.all[2]?.answer(201, stored("b2", "big.pdf"));
    await settle();
    expect(sendButton(host)?.disabled).toBe(false);
    click(item(host, "big.pdf")?.querySelector('[aria-label="Remove big.pdf"]'));
    expect(host.querySelector(".tray")).toBeNull();
    expect(sendButton(host)?.disabled).toBe(true);
  });

  it("uploads three at a time and takes ten files at most, saying so", async () => {
    const host = render();
    pick(host, ...Array.from({ length: 12 }, (_, i) => `f${i}.pdf`));
    expect(host.querySelectorAll(".tray-item")).toHaveLength(10);
    expect(host.querySelector(".tray__notice")?.textContent).toBe("You can send up to 10 files in one message: 2 files were not added.");
    expect(FakeXhr.all).toHaveLength(3);
    FakeXhr.all[0]?.answer(201, stored("c0", "f0.pdf"));
    await settle();
    expect(FakeXhr.all).toHaveLength(4);
  });
});
