import { useEffect, useState } from "react";
import { useConnectionState, useSocket } from "../lib/services";
import { Icon } from "./Icon";

/**
 * Says when live updates are off (connecting, reconnecting, offline), never when all is well.
 * "Offline" follows the browser at once, even while the socket has not yet noticed the network
 * is gone.
 */
export function ConnectionBanner() {
  const state = useConnectionState();
  const socket = useSocket();
  const [now, setNow] = useState(() => Date.now());
  const [graceOver, setGraceOver] = useState(false);
  const [online, setOnline] = useState(() => navigator.onLine);

  useEffect(() => {
    const up = () => setOnline(true);
    const down = () => setOnline(false);
    window.addEventListener("online", up);
    window.addEventListener("offline", down);
    return () => {
      window.removeEventListener("online", up);
      window.removeEventListener("offline", down);
    };
  }, []);

  // The first connect is quick: showing "Connecting…" for it would only flash.
  useEffect(() => {
    if (state.status === "open") {
      setGraceOver(false);
      return;
    }
    const t = window.setTimeout(() => setGraceOver(true), 1200);
    return () => window.clearTimeout(t);
  }, [state.status]);

  useEffect(() => {
    if (state.status !== "waiting") return;
    const t = window.setInterval(() => setNow(Date.now()), 500);
    return () => window.clearInterval(t);
  }, [state.status]);

  const visible = state.status !== "idle" && (!online || (state.status !== "open" && graceOver));
  let text = "";
  if (!online) text = "You're offline. Messages will be sent when you reconnect.";
  else if (state.status === "waiting") {
    const secs = Math.max(0, Math.ceil((state.retryAt - now) / 1000));
    text = secs > 0 ? `Connection lost. Reconnecting in ${secs}s…` : "Reconnecting…";
  } else if (state.status === "connecting") text = state.attempt > 0 ? "Reconnecting…" : "Connecting…";

  return (
    <div className={`conn-banner ${visible ? "is-visible" : ""}`} role="status" aria-live="polite" data-state={state.status}>
      {visible ? (
        <>
          <Icon name="wifiOff" />
          <span>{text}</span>
          {state.status === "waiting" && online ? (
            <button type="button" className="conn-banner__retry" onClick={() => socket.reconnectNow()}>
              Retry now
            </button>
          ) : null}
        </>
      ) : null}
    </div>
  );
}
