// The one typed REST client: openapi-fetch over the generated `paths`, with a middleware that
// adds the bearer token and turns any 401 into a clean logout.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { paths } from "../api/schema";
import type { ErrorBody } from "../api/types";
import type { SessionStore } from "./session";

export type ApiClient = Client<paths>;

/** Endpoints where 401 means "wrong password", not "your session ended". */
const CREDENTIAL_PATHS = ["/api/auth/login", "/api/auth/register"];

export function createApiClient(session: SessionStore, options: { baseUrl?: string; fetch?: typeof fetch } = {}): ApiClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl ?? (typeof window === "undefined" ? "http://localhost" : window.location.origin),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const auth: Middleware = {
    onRequest({ request }) {
      const token = session.token();
      if (token && !request.headers.has("Authorization")) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
    onResponse({ request, response }) {
      if (response.status === 401) {
        const path = new URL(request.url).pathname;
        if (!CREDENTIAL_PATHS.includes(path)) session.clear("expired");
      }
      return response;
    },
  };
  client.use(auth);
  return client;
}

/** A sentence for the user from an error body (or a network failure). */
export function errorMessage(error: ErrorBody | undefined | null, fallback = "Something went wrong. Please try again."): string {
  return error?.error.message ? capitalize(error.error.message) : fallback;
}

export function fieldErrors(error: ErrorBody | undefined | null): Record<string, string> {
  const f = error?.error.fields;
  return f ? { ...f } : {};
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Thrown by feature api modules when a call fails, carrying the status and the contract's code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Unwraps an openapi-fetch result: the data, or an ApiError (status 0 for a network failure). */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    const body = result.error as ErrorBody | undefined;
    throw new ApiError(
      result.response.status,
      body?.error?.code ?? "unknown",
      errorMessage(body),
      fieldErrors(body),
    );
  }
  return result.data as T;
}

/** Runs a request, turning a network failure into an ApiError with status 0. */
export async function call<T>(req: () => Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result;
  try {
    result = await req();
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "Can't reach the server. Check your connection and try again.");
  }
  return unwrap(result);
}
