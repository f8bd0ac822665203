import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "../../../lib/api-client";
import { useApi } from "../../../lib/services";
import { endOtherSessions, endSession, listSessions, type AccountSession } from "../api";

export type SessionsApi = {
  list: AccountSession[];
  status: "loading" | "ready" | "error";
  error: string | null;
  reload: () => void;
  /** Ends one other session: it leaves the list at once and comes back if the server refuses. */
  end: (id: number) => Promise<void>;
  /** Ends every session but this one; rejects with the server's reason. */
  endOthers: () => Promise<void>;
};

/** The account's sessions, fetched when the page opens (and on demand). */
export function useSessions(): SessionsApi {
  const api = useApi();
  const [list, setList] = useState<AccountSession[]>([]);
  const [status, setStatus] = useState<SessionsApi["status"]>("loading");
  const [error, setError] = useState<string | null>(null);
  const inFlight = useRef<AbortController | null>(null);
  const listRef = useRef(list);
  listRef.current = list;

  const reload = useCallback(() => {
    inFlight.current?.abort();
    const ctl = new AbortController();
    inFlight.current = ctl;
    setStatus("loading");
    listSessions(api, ctl.signal)
      .then((l) => {
        setList(l);
        setStatus("ready");
        setError(null);
      })
      .catch((err: unknown) => {
        if (err instanceof DOMException && err.name === "AbortError") return;
        setStatus("error");
        setError(err instanceof ApiError ? err.message : "Couldn't load your sessions.");
      });
  }, [api]);

  useEffect(() => {
    reload();
    return () => inFlight.current?.abort();
  }, [reload]);

  const end = useCallback(
    async (id: number) => {
      const at = listRef.current.findIndex((s) => s.id === id);
      const removed = listRef.current[at];
      setError(null);
      setList((l) => l.filter((s) => s.id !== id));
      try {
        await endSession(api, id);
      } catch (err) {
        // Already gone (404) is what was asked for; anything else puts the row back.
        if (err instanceof ApiError && err.status === 404) return;
        const back = removed;
        if (back) setList((l) => (l.some((s) => s.id === id) ? l : [...l.slice(0, Math.max(at, 0)), back, ...l.slice(Math.max(at, 0))]));
        setError(err instanceof ApiError ? `Couldn't log out that device. ${err.message}` : "Couldn't log out that device. Please try again.");
      }
    },
    [api],
  );

  const endOthers = useCallback(async () => {
    await endOtherSessions(api);
    setList((l) => l.filter((s) => s.current));
    setError(null);
  }, [api]);

  return { list, status, error, reload, end, endOthers };
}
