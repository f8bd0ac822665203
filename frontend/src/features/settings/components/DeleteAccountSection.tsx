import { useId, useRef, useState, type FormEvent } from "react";
import { Button } from "../../../components/Button";
import { Modal } from "../../../components/Modal";
import { ApiError } from "../../../lib/api-client";
import { useServices } from "../../../lib/services";
import { deleteAccount } from "../api";
import { Field } from "./Field";

/** The danger zone: deleting the account, after typing the password. */
export function DeleteAccountSection() {
  const id = useId();
  const [open, setOpen] = useState(false);
  return (
    <section className="settings-card settings-card--danger" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Delete account</h2>
      <p className="settings-card__intro">
        Your account, your contacts and the messages you sent are erased for good. The people you talked to see
        “Deleted user”. This can't be undone.
      </p>
      <div className="settings-card__actions">
        <Button variant="danger" onClick={() => setOpen(true)}>
          Delete my account…
        </Button>
      </div>
      {open ? <DeleteAccountDialog onCancel={() => setOpen(false)} /> : null}
    </section>
  );
}

function DeleteAccountDialog({ onCancel }: { onCancel: () => void }) {
  const { api, session, socket } = useServices();
  const id = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!password) {
      setError("Enter your password.");
      inputRef.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    // The server closes this tab's socket (1008) before it answers; closing it first keeps that
    // from being taken for a session ended elsewhere.
    socket.stop();
    try {
      await deleteAccount(api, password);
      // The login page says why the session ended.
      session.clear("deleted");
    } catch (err) {
      const token = session.token();
      if (token) socket.start(token);
      setBusy(false);
      if (err instanceof ApiError && err.fields.password) setError("That's not your password.");
      else if (err instanceof ApiError && err.status === 429) setError("Too many attempts. Wait a minute and try again.");
      else setError(err instanceof ApiError ? err.message : "Couldn't delete your account. Please try again.");
      inputRef.current?.focus();
    }
  };

  return (
    <Modal labelledBy={`${id}-title`} describedBy={`${id}-text`} onClose={onCancel} initialFocus={inputRef} role="alertdialog" className="dialog--confirm">
      <form className="confirm" onSubmit={submit} noValidate aria-label="Delete account">
        <h2 id={`${id}-title`}>Delete your account?</h2>
        <p id={`${id}-text`}>Type your password to confirm. Everything is erased and you are logged out everywhere.</p>
        <Field
          id={`${id}-password`}
          ref={inputRef}
          label="Password"
          type="password"
          name="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => {
            setPassword(e.target.value);
            setError(null);
          }}
          error={error ?? undefined}
        />
        <div className="confirm__actions">
          <Button variant="ghost" onClick={onCancel} disabled={busy}>
            Cancel
          </Button>
          <Button type="submit" variant="danger" busy={busy}>
            Delete account
          </Button>
        </div>
      </form>
    </Modal>
  );
}
