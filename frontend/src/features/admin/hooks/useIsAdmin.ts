import { useEffect, useState } from "react";
import { useApi, useSession } from "../../../lib/services";
import { fetchIsAdmin } from "../api";

// One answer per token: the header and the admin route ask the same question.
const cache = new Map<string, Promise<boolean>>();

/** Whether the signed-in user is an administrator: null while unknown. */
export function useIsAdmin(): boolean | null {
  const api = useApi();
  const token = useSession()?.token ?? null;
  const [state, setState] = useState<{ token: string | null; value: boolean | null }>({ token: null, value: null });
  useEffect(() => {
    if (!token) return;
    let live = true;
    let p = cache.get(token);
    if (!p) {
      p = fetchIsAdmin(api).catch(() => {
        cache.delete(token);
        return false;
      });
      cache.set(token, p);
    }
    void p.then((value) => {
      if (live) setState({ token, value });
    });
    return () => {
      live = false;
    };
  }, [api, token]);
  return state.token === token ? state.value : null;
}
