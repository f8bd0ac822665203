import { useId, useState, type FormEvent } from "react";
import { Button } from "../../../components/Button";
import { ApiError } from "../../../lib/api-client";
import { useApi } from "../../../lib/services";
import { changePassword } from "../api";
import { PASSWORD_MIN, validatePasswordForm } from "../model";
import { Field } from "./Field";

function sentenceCase(fields: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v.charAt(0).toUpperCase() + v.slice(1);
  return out;
}

/** Changing the password; the server ends every other session, which the list then shows. */
export function PasswordSection({ onChanged }: { onChanged: () => void }) {
  const api = useApi();
  const id = useId();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [fields, setFields] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(false);
    setError(null);
    const f = validatePasswordForm({ current, next, confirm });
    setFields(f);
    if (Object.keys(f).length > 0) return;
    setBusy(true);
    try {
      await changePassword(api, current, next);
      setCurrent("");
      setNext("");
      setConfirm("");
      setDone(true);
      onChanged();
    } catch (err) {
      if (err instanceof ApiError && Object.keys(err.fields).length > 0) {
        setFields(sentenceCase(err.fields));
      } else if (err instanceof ApiError && err.status === 429) {
        setError("Too many attempts. Wait a minute and try again.");
      } else {
        setError(err instanceof ApiError ? err.message : "Couldn't change your password. Please try again.");
      }
    } finally {
      setBusy(false);
    }
  };

  const edit = (set: (v: string) => void, key: string) => (e: { target: { value: string } }) => {
    set(e.target.value);
    setDone(false);
    if (fields[key]) setFields(({ [key]: _gone, ...rest }) => rest);
  };

  return (
    <section className="settings-card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Password</h2>
      <p className="settings-card__intro">Changing it signs you out on every other device.</p>
      <form onSubmit={submit} noValidate aria-label="Change password">
        {error ? (
          <p className="settings-card__error" role="alert">
            {error}
          </p>
        ) : null}
        <Field
          id={`${id}-current`}
          label="Current password"
          type="password"
          name="current_password"
          autoComplete="current-password"
          value={current}
          onChange={edit(setCurrent, "current_password")}
          error={fields.current_password}
        />
        <Field
          id={`${id}-new`}
          label="New password"
          type="password"
          name="new_password"
          autoComplete="new-password"
          value={next}
          onChange={edit(setNext, "new_password")}
          error={fields.new_password}
          hint={`At least ${PASSWORD_MIN} characters.`}
        />
        <Field
          id={`${id}-confirm`}
          label="Confirm new password"
          type="password"
          name="confirm_password"
          autoComplete="new-password"
          value={confirm}
          onChange={edit(setConfirm, "confirm")}
          error={fields.confirm}
        />
        <div className="settings-card__actions">
          <Button type="submit" busy={busy}>
            Change password
          </Button>
          <p className="settings-card__ok" role="status">
            {done ? "Password changed. Your other devices were signed out." : null}
          </p>
        </div>
      </form>
    </section>
  );
}
