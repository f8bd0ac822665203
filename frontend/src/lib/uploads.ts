// `POST /api/uploads` with upload progress. fetch cannot report how much of a request body has
// gone out, so this one call uses XMLHttpRequest; it follows the REST client's rules otherwise
// (bearer token, a 401 ends the session, failures as ApiError with the contract's code).
import type { ErrorBody, Upload } from "../api/types";
import { ApiError, errorMessage, fieldErrors } from "./api-client";
import { formatBytes } from "./attachments";
import type { SessionStore } from "./session";

/** The part of XMLHttpRequest an upload uses, so tests can hand in a fake. */
export interface XhrLike {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: FormData): void;
  abort(): void;
  readonly status: number;
  readonly responseText: string;
  readonly upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  ontimeout: (() => void) | null;
}

export type UploadHandle = {
  /** The stored upload, or an ApiError (status 0: no answer); an AbortError once aborted. */
  done: Promise<Upload>;
  abort: () => void;
};

export type UploadOptions = {
  session: SessionStore;
  /** Fraction of the body sent so far, 0…1. */
  onProgress?: (fraction: number) => void;
  baseUrl?: string;
  xhr?: () => XhrLike;
};

/** Uploads one file as the multipart form's `file` part. */
export function uploadFile(file: Blob, name: string, opts: UploadOptions): UploadHandle {
  const xhr = opts.xhr ? opts.xhr() : (new XMLHttpRequest() as unknown as XhrLike);
  let settled = false;
  let rejectIt: (e: unknown) => void = () => undefined;
  const done = new Promise<Upload>((resolve, reject) => {
    rejectIt = reject;
    xhr.open("POST", `${opts.baseUrl ?? ""}/api/uploads`);
    const token = opts.session.token();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) opts.onProgress?.(Math.min(1, e.loaded / e.total));
    };
    xhr.onload = () => {
      settled = true;
      const body = parse(xhr.responseText);
      if (xhr.status === 201 || xhr.status === 200) {
        if (isUpload(body)) resolve(body);
        else reject(new ApiError(xhr.status, "invalid_response", "The server's answer was not understood."));
        return;
      }
      if (xhr.status === 401) opts.session.clear("expired");
      const err = isErrorBody(body) ? body : null;
      reject(new ApiError(xhr.status, err?.error.code ?? "unknown", errorMessage(err), fieldErrors(err)));
    };
    const networkFailure = () => {
      settled = true;
      reject(new ApiError(0, "network", "Can't reach the server. Check your connection and try again."));
    };
    xhr.onerror = networkFailure;
    xhr.ontimeout = networkFailure;
    xhr.onabort = () => {
      settled = true;
      reject(new DOMException("The upload was cancelled.", "AbortError"));
    };
    const form = new FormData();
    form.append("file", file, name);
    xhr.send(form);
  });
  return {
    done,
    abort: () => {
      if (settled) return;
      settled = true;
      xhr.abort();
      rejectIt(new DOMException("The upload was cancelled.", "AbortError"));
    },
  };
}

function parse(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}

function isErrorBody(v: unknown): v is ErrorBody {
  return typeof v === "object" && v !== null && typeof (v as { error?: { code?: unknown } }).error?.code === "string";
}

function isUpload(v: unknown): v is Upload {
  if (typeof v !== "object" || v === null) return false;
  const u = v as Record<string, unknown>;
  return typeof u.id === "string" && typeof u.name === "string" && typeof u.url === "string" && typeof u.size === "number";
}

/**
 * What a failed upload says under its name: the server's reason in a user's words — "Too large:
 * the limit is 25 MB" (413, with the limit the server named), the quota or the number of
 * uploads at once (429), what is wrong with the file (422), or that the server is out of reach.
 */
export function uploadErrorText(err: unknown): string {
  if (!(err instanceof ApiError)) return "The upload failed. Please try again.";
  if (err.status === 0) return err.message;
  if (err.status === 413) {
    const limit = /(\d{3,})\s*bytes/u.exec(err.message)?.[1];
    const n = limit ? Number(limit) : NaN;
    return Number.isFinite(n) && n < 2 ** 50 ? `Too large: the limit is ${formatBytes(n)}` : "Too large to upload";
  }
  if (err.status === 429) {
    const wait = /retry in (\d+) s/u.exec(err.message)?.[1];
    const secs = wait ? Number(wait) : NaN;
    return Number.isFinite(secs) ? `Upload limit reached: try again in ${formatWait(secs)}` : `Upload limit reached: ${lower(err.message)}`;
  }
  if (err.status === 422) {
    const why = err.fields.file;
    return why ? capitalize(why) : err.message;
  }
  return err.message;
}

function formatWait(secs: number): string {
  if (secs < 90) return `${secs} s`;
  if (secs < 90 * 60) return `${Math.round(secs / 60)} min`;
  return `${Math.round(secs / 3600)} h`;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function lower(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
