import { useId, useMemo, useState } from "react";
import { Button } from "../../../components/Button";
import { Icon } from "../../../components/Icon";
import { ConfirmDialog } from "../../../components/ConfirmDialog";
import { Spinner } from "../../../components/Spinner";
import type { SessionsApi } from "../hooks/useSessions";
import { sessionView, sortSessions } from "../model";

/** The account's signed-in devices: this one first, each other one with its own "Log out". */
export function SessionsSection({ sessions }: { sessions: SessionsApi }) {
  const id = useId();
  const [confirming, setConfirming] = useState(false);
  const views = useMemo(() => sortSessions(sessions.list).map((s) => sessionView(s)), [sessions.list]);
  const others = views.filter((v) => !v.current).length;

  return (
    <section className="settings-card" aria-labelledby={`${id}-title`}>
      <div className="settings-card__head">
        <h2 id={`${id}-title`}>Where you're signed in</h2>
        <Button variant="ghost" icon onClick={sessions.reload} aria-label="Refresh the list" title="Refresh">
          <Icon name="retry" />
        </Button>
      </div>
      {sessions.error ? (
        <p className="settings-card__error" role="alert">
          {sessions.error}
        </p>
      ) : null}
      {sessions.status === "loading" && views.length === 0 ? (
        <div className="settings-card__loading">
          <Spinner />
        </div>
      ) : (
        <ul className="sessions" aria-label="Sessions">
          {views.map((v) => (
            <li key={v.id} className={`session ${v.current ? "session--current" : ""}`}>
              <span className="session__icon" aria-hidden="true">
                <Icon name="laptop" />
              </span>
              <div className="session__text">
                <span className="session__device" title={v.rawAgent ?? undefined}>
                  {v.device}
                </span>
                <span className="session__meta">
                  {v.label ? <strong className="session__this">{v.label}</strong> : null}
                  <span>{v.ip}</span>
                  <span aria-hidden="true">·</span>
                  <span>{v.activity}</span>
                </span>
              </div>
              {v.current ? null : (
                <Button variant="subtle" className="session__end" onClick={() => void sessions.end(v.id)} aria-label={`Log out ${v.device}`}>
                  Log out
                </Button>
              )}
            </li>
          ))}
        </ul>
      )}
      {sessions.status === "ready" && others === 0 ? <p className="settings-card__intro">You're not signed in anywhere else.</p> : null}
      {others > 0 ? (
        <div className="settings-card__actions">
          <Button variant="subtle" onClick={() => setConfirming(true)}>
            Log out everywhere else
          </Button>
        </div>
      ) : null}
      {confirming ? (
        <ConfirmOthers
          count={others}
          onCancel={() => setConfirming(false)}
          onConfirm={async () => {
            await sessions.endOthers();
            setConfirming(false);
          }}
        />
      ) : null}
    </section>
  );
}

function ConfirmOthers({ count, onCancel, onConfirm }: { count: number; onCancel: () => void; onConfirm: () => Promise<void> }) {
  return (
    <ConfirmDialog
      title="Log out everywhere else?"
      confirmLabel="Log out others"
      failure="Couldn't log out the other devices. Please try again."
      onCancel={onCancel}
      onConfirm={onConfirm}
    >
      {count === 1 ? "The other device" : `The ${count} other devices`} will have to log in again. This device stays signed in.
    </ConfirmDialog>
  );
}
