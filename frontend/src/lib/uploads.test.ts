import { describe, expect, it } from "vitest";
import { alice } from "../test/fakes";
import { MemoryStorage } from "../test/storage";
import { ApiError } from "./api-client";
import { SessionStore } from "./session";
import { uploadErrorText, uploadFile, type XhrLike } from "./uploads";

class FakeXhr implements XhrLike {
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: FormData | null = null;
  aborted = false;
  status = 0;
  responseText = "";
  upload: XhrLike["upload"] = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  ontimeout: (() => void) | null = null;
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: FormData) {
    this.body = body;
  }
  abort() {
    this.aborted = true;
    this.onabort?.();
  }
  answer(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
  }
}

function setup() {
  const session = new SessionStore(new MemoryStorage(), new MemoryStorage());
  session.set({ token: "tok-1", user: alice });
  const xhr = new FakeXhr();
  const progress: number[] = [];
  const handle = uploadFile(new Blob(["hello"], { type: "text/plain" }), "héllo wörld.txt", {
    session,
    xhr: () => xhr,
    onProgress: (p) => progress.push(p),
  });
  return { session, xhr, progress, handle };
}

const stored = {
  id: "0".repeat(32),
  name: "héllo wörld.txt",
  content_type: "text/plain",
  size: 5,
  sha256: "d".repeat(64),
  width: null,
  height: null,
  url: "/api/files/0?e=1&s=x",
  thumbnail_url: null,
};

describe("uploadFile", () => {
  it("posts one `file` part with its name and the bearer token, and reports progress", async () => {
    const { xhr, progress, handle } = setup();
    expect(xhr.method).toBe("POST");
    expect(xhr.url).toBe("/api/uploads");
    expect(xhr.headers.Authorization).toBe("Bearer tok-1");
    const part = xhr.body?.get("file");
    expect(part instanceof File && part.name).toBe("héllo wörld.txt");
    expect([...(xhr.body?.keys() ?? [])]).toEqual(["file"]);
    xhr.upload.onprogress?.({ loaded: 50, total: 200, lengthComputable: true });
    xhr.upload.onprogress?.({ loaded: 0, total: 0, lengthComputable: false });
    xhr.upload.onprogress?.({ loaded: 200, total: 200, lengthComputable: true });
    expect(progress).toEqual([0.25, 1]);
    xhr.answer(201, stored);
    await expect(handle.done).resolves.toEqual(stored);
  });

  it("fails with the server's code and message", async () => {
    const { xhr, handle } = setup();
    xhr.answer(413, { error: { code: "payload_too_large", message: "the request body is larger than 4194304 bytes" } });
    const err = await handle.done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 413, code: "payload_too_large", message: "The request body is larger than 4194304 bytes" });
    expect(uploadErrorText(err)).toBe("Too large: the limit is 4 MB");
  });

  it("ends the session on 401", async () => {
    const { xhr, handle, session } = setup();
    xhr.answer(401, { error: { code: "unauthorized", message: "token revoked" } });
    await handle.done.catch(() => undefined);
    expect(session.get()).toBeNull();
  });

  it("says the server is out of reach on a network failure", async () => {
    const { xhr, handle } = setup();
    xhr.onerror?.();
    const err = await handle.done.catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, code: "network" });
    expect(uploadErrorText(err)).toBe("Can't reach the server. Check your connection and try again.");
  });

  it("aborts: the request is cancelled and the promise ends with an AbortError", async () => {
    const { xhr, handle } = setup();
    handle.abort();
    expect(xhr.aborted).toBe(true);
    const err = await handle.done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DOMException);
    expect((err as DOMException).name).toBe("AbortError");
    // Aborting again, or after the answer, does nothing.
    handle.abort();
  });
});

describe("uploadErrorText", () => {
  it("puts the server's reasons in a user's words", () => {
    expect(uploadErrorText(new ApiError(413, "payload_too_large", "The request body is larger than 26214400 bytes"))).toBe("Too large: the limit is 25 MB");
    expect(uploadErrorText(new ApiError(413, "payload_too_large", "The request body is larger than 18446744073709551615 bytes"))).toBe("Too large to upload");
    expect(uploadErrorText(new ApiError(429, "rate_limited", "Too many requests; retry in 30 s"))).toBe("Upload limit reached: try again in 30 s");
    expect(uploadErrorText(new ApiError(429, "rate_limited", "Too many requests; retry in 7200 s"))).toBe("Upload limit reached: try again in 2 h");
    expect(uploadErrorText(new ApiError(429, "rate_limited", "Slow down"))).toBe("Upload limit reached: slow down");
    expect(uploadErrorText(new ApiError(422, "validation_failed", "File: the file is empty", { file: "the file is empty" }))).toBe("The file is empty");
    expect(uploadErrorText(new ApiError(422, "validation_failed", "Name: bad"))).toBe("Name: bad");
    expect(uploadErrorText(new ApiError(500, "internal", "Something went wrong. Please try again."))).toBe("Something went wrong. Please try again.");
    expect(uploadErrorText(new Error("boom"))).toBe("The upload failed. Please try again.");
  });
});
