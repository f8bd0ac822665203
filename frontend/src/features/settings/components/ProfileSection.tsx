import { useEffect, useId, useState, type FormEvent } from "react";
import type { User } from "../../../api/types";
import { Button } from "../../../components/Button";
import { ApiError } from "../../../lib/api-client";
import { useServices } from "../../../lib/services";
import { updateDisplayName } from "../api";
import { DISPLAY_NAME_MAX, validateDisplayName } from "../model";
import { Field } from "./Field";

/** Changing the display name: the header (and everyone's lists, over the socket) follow at once. */
export function ProfileSection({ me }: { me: User }) {
  const { api, session } = useServices();
  const id = useId();
  const [name, setName] = useState(me.display_name);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // A new name saved on another device shows up here too.
  useEffect(() => setName(me.display_name), [me.display_name]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setStatus(null);
    const invalid = validateDisplayName(name);
    setError(invalid);
    if (invalid) return;
    setBusy(true);
    try {
      const user = await updateDisplayName(api, name.trim());
      session.updateUser(user);
      setName(user.display_name);
      setStatus("Your name is saved.");
    } catch (err) {
      if (err instanceof ApiError && err.fields.display_name) setError(err.fields.display_name);
      else setError(err instanceof ApiError ? err.message : "Couldn't save your name. Please try again.");
    } finally {
      setBusy(false);
    }
  };

  const unchanged = name.trim() === me.display_name;
  return (
    <section className="settings-card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Profile</h2>
      <p className="settings-card__intro">
        Your username is <strong>@{me.username}</strong>. Your display name is what your contacts see.
      </p>
      <form onSubmit={submit} noValidate aria-label="Profile">
        <Field
          id={`${id}-name`}
          label="Display name"
          name="display_name"
          autoComplete="name"
          maxLength={DISPLAY_NAME_MAX * 2}
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            setStatus(null);
          }}
          error={error ?? undefined}
          hint={`Up to ${DISPLAY_NAME_MAX} characters.`}
        />
        <div className="settings-card__actions">
          <Button type="submit" busy={busy} disabled={unchanged}>
            Save name
          </Button>
          <p className="settings-card__ok" role="status">
            {status}
          </p>
        </div>
      </form>
    </section>
  );
}
