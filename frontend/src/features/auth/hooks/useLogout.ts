import { useCallback, useState } from "react";
import { useServices } from "../../../lib/services";
import { logout } from "../api";

/** Revokes the token on the server, then ends the session here (the socket closes with it). */
export function useLogout(): { logout: () => Promise<void>; busy: boolean } {
  const { api, session } = useServices();
  const [busy, setBusy] = useState(false);
  const run = useCallback(async () => {
    setBusy(true);
    await logout(api);
    session.clear("logout");
    setBusy(false);
  }, [api, session]);
  return { logout: run, busy };
}
