import { useCallback, useEffect, useState } from "react";
import { ApiError } from "../../../lib/api-client";

export type Async<T> = { data: T | null; error: string | null; loading: boolean; reload: () => void };

/** Runs `load` when its dependencies change (aborting the previous run); `reload` runs it again. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: readonly unknown[]): Async<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    setError(null);
    run(ctl.signal).then(
      (d) => {
        if (ctl.signal.aborted) return;
        setData(d);
        setLoading(false);
      },
      (e: unknown) => {
        if (ctl.signal.aborted) return;
        setError(e instanceof ApiError ? e.message : "Something went wrong.");
        setLoading(false);
      },
    );
    return () => ctl.abort();
  }, [run, tick]);
  return { data, error, loading, reload: () => setTick((t) => t + 1) };
}
