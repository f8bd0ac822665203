import { useEffect, useId, useRef, useState } from "react";
import type { Contact, User } from "../../../api/types";
import { Avatar } from "../../../components/Avatar";
import { Button } from "../../../components/Button";
import { Icon } from "../../../components/Icon";
import { Modal } from "../../../components/Modal";
import { Spinner } from "../../../components/Spinner";
import { ApiError } from "../../../lib/api-client";
import { useDebounced } from "../../../lib/hooks";
import { useApi } from "../../../lib/services";
import { addContact, searchUsers } from "../api";

type Props = {
  initialQuery: string;
  contacts: Contact[];
  onClose: () => void;
  onAdded: (c: Contact) => void;
  onOpen: (roomId: number) => void;
};

/** A dialog to find any user by name and start a conversation (adds them as a contact). */
export function UserSearch({ initialQuery, contacts, onClose, onAdded, onOpen }: Props) {
  const api = useApi();
  const id = useId();
  const [query, setQuery] = useState(initialQuery);
  const q = useDebounced(query.trim(), 250);
  const [results, setResults] = useState<User[] | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [adding, setAdding] = useState<number | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (!q) {
      setResults(null);
      setError(null);
      return;
    }
    const ctl = new AbortController();
    setLoading(true);
    setError(null);
    searchUsers(api, q, ctl.signal)
      .then((users) => setResults(users))
      .catch((err: unknown) => {
        if (err instanceof DOMException && err.name === "AbortError") return;
        setError(err instanceof ApiError ? err.message : "Search failed.");
      })
      .finally(() => {
        if (!ctl.signal.aborted) setLoading(false);
      });
    return () => ctl.abort();
  }, [q, api]);

  const byUser = new Map(contacts.map((c) => [c.user.id, c]));

  const add = async (u: User) => {
    const existing = byUser.get(u.id);
    if (existing) {
      onOpen(existing.room_id);
      return;
    }
    setAdding(u.id);
    setError(null);
    try {
      const c = await addContact(api, u.username);
      onAdded(c);
      onOpen(c.room_id);
    } catch (err) {
      setAdding(null);
      setError(err instanceof ApiError ? err.message : "Couldn't add this contact.");
    }
  };

  return (
    <Modal labelledBy={`${id}-title`} onClose={onClose} initialFocus={inputRef}>
      <div className="dialog__header">
        <h2 id={`${id}-title`}>Find people</h2>
        <Button variant="ghost" icon onClick={onClose} aria-label="Close">
          <Icon name="close" />
        </Button>
      </div>
      <div className="dialog__search">
        <Icon name="search" className="contacts__search-icon" />
        <input
          ref={inputRef}
          type="search"
          placeholder="Name or username"
          aria-label="Search all users by name or username"
          value={query}
          maxLength={64}
          onChange={(e) => setQuery(e.target.value)}
        />
        {loading ? <Spinner size="sm" /> : null}
      </div>
      <div className="dialog__body" aria-live="polite">
        {error ? (
          <p className="dialog__error" role="alert">
            {error}
          </p>
        ) : null}
        {!q ? (
          <p className="dialog__hint">Type a name or username to find someone to talk to.</p>
        ) : results && results.length === 0 && !loading ? (
          <p className="dialog__hint">Nobody found for “{q}”.</p>
        ) : null}
        {results && results.length > 0 ? (
          <ul className="user-results" aria-label="Search results">
            {results.map((u) => {
              const existing = byUser.get(u.id);
              return (
                <li key={u.id} className="user-result">
                  <Avatar name={u.display_name} id={u.id} />
                  <span className="user-result__names">
                    <span className="user-result__name" dir="auto">
                      {u.display_name}
                    </span>
                    <span className="user-result__username">@{u.username}</span>
                  </span>
                  <Button
                    variant={existing ? "subtle" : "primary"}
                    busy={adding === u.id}
                    disabled={adding !== null && adding !== u.id}
                    onClick={() => void add(u)}
                    aria-label={existing ? `Open chat with ${u.display_name}` : `Add ${u.display_name} and start chatting`}
                  >
                    {existing ? "Open chat" : "Add"}
                  </Button>
                </li>
              );
            })}
          </ul>
        ) : null}
      </div>
    </Modal>
  );
}
