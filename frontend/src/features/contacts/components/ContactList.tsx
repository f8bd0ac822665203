import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import type { Contact } from "../../../api/types";
import { Button } from "../../../components/Button";
import { Icon } from "../../../components/Icon";
import { Spinner } from "../../../components/Spinner";
import { useDebounced, useNow } from "../../../lib/hooks";
import { useApi, useConnectionState } from "../../../lib/services";
import { searchContacts } from "../api";
import { ContactRow } from "./ContactRow";

type Props = {
  contacts: Contact[];
  status: "loading" | "ready" | "error";
  meId: number;
  activeRoomId: number | null;
  typingRooms: ReadonlySet<number>;
  onReload: () => void;
  onFindPeople: (query: string) => void;
};

/** The searchable contacts list, most recent conversation first. Arrow keys move between rows. */
export function ContactList({ contacts, status, meId, activeRoomId, typingRooms, onReload, onFindPeople }: Props) {
  const api = useApi();
  const now = useNow(30_000);
  const [query, setQuery] = useState("");
  const q = useDebounced(query.trim(), 200);
  const [matchIds, setMatchIds] = useState<Set<number> | null>(null);
  const [searching, setSearching] = useState(false);
  const listRef = useRef<HTMLUListElement>(null);
  // Without a live connection, presence is unknown rather than stale.
  const connected = useConnectionState().status === "open";

  useEffect(() => {
    if (!q) {
      setMatchIds(null);
      return;
    }
    const ctl = new AbortController();
    setSearching(true);
    searchContacts(api, q, ctl.signal)
      .then((found) => setMatchIds(new Set(found.map((c) => c.user.id))))
      .catch(() => {
        // fall back to filtering what is loaded
        const needle = q.toLowerCase();
        setMatchIds(
          new Set(
            contacts
              .filter((c) => c.user.username.toLowerCase().includes(needle) || c.user.display_name.toLowerCase().includes(needle))
              .map((c) => c.user.id),
          ),
        );
      })
      .finally(() => {
        if (!ctl.signal.aborted) setSearching(false);
      });
    return () => ctl.abort();
    // `contacts` only feeds the offline fallback, so a change to it does not start a new search.
  }, [q, api]);

  const shown = useMemo(() => (matchIds ? contacts.filter((c) => matchIds.has(c.user.id)) : contacts), [contacts, matchIds]);

  const onKeyDown = (e: KeyboardEvent<HTMLUListElement>) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp" && e.key !== "Home" && e.key !== "End") return;
    const links = Array.from(listRef.current?.querySelectorAll<HTMLAnchorElement>("a.contact-row__link") ?? []);
    if (links.length === 0) return;
    const i = links.indexOf(document.activeElement as HTMLAnchorElement);
    let next = i;
    if (e.key === "ArrowDown") next = i < 0 ? 0 : Math.min(links.length - 1, i + 1);
    if (e.key === "ArrowUp") next = i < 0 ? 0 : Math.max(0, i - 1);
    if (e.key === "Home") next = 0;
    if (e.key === "End") next = links.length - 1;
    e.preventDefault();
    links[next]?.focus();
  };

  const onSearchKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "Escape") setQuery("");
    if (e.key === "ArrowDown") {
      e.preventDefault();
      listRef.current?.querySelector<HTMLAnchorElement>("a.contact-row__link")?.focus();
    }
  };

  return (
    <div className="contacts">
      <div className="contacts__search">
        <Icon name="search" className="contacts__search-icon" />
        <input
          type="search"
          placeholder="Search contacts"
          aria-label="Search your contacts"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={onSearchKey}
          maxLength={64}
        />
        {searching ? <Spinner size="sm" /> : null}
      </div>

      {status === "loading" ? (
        <div className="contacts__skeleton" aria-busy="true" aria-label="Loading contacts">
          {[0, 1, 2, 3].map((i) => (
            <div key={i} className="skeleton-row">
              <span className="skeleton skeleton--circle" />
              <span className="skeleton-row__lines">
                <span className="skeleton skeleton--line" />
                <span className="skeleton skeleton--line short" />
              </span>
            </div>
          ))}
        </div>
      ) : status === "error" && contacts.length === 0 ? (
        <div className="contacts__message" role="alert">
          <p>Couldn't load your contacts.</p>
          <Button variant="subtle" onClick={onReload}>
            <Icon name="retry" /> Try again
          </Button>
        </div>
      ) : contacts.length === 0 ? (
        <div className="contacts__empty">
          <div className="empty-illustration" aria-hidden="true">
            <Icon name="userPlus" />
          </div>
          <h2>No conversations yet</h2>
          <p>Find someone you know by their name or username and say hello.</p>
          <Button onClick={() => onFindPeople("")}>
            <Icon name="search" /> Find people
          </Button>
        </div>
      ) : (
        <>
          {matchIds && shown.length === 0 ? (
            <div className="contacts__message">
              <p>No contact matches “{q}”.</p>
            </div>
          ) : null}
          <ul className="contacts__list" ref={listRef} onKeyDown={onKeyDown} aria-label="Conversations">
            {shown.map((c) => (
              <ContactRow
                key={c.user.id}
                contact={connected ? c : { ...c, online: false }}
                meId={meId}
                active={c.room_id === activeRoomId}
                typing={typingRooms.has(c.room_id)}
                now={now}
              />
            ))}
          </ul>
          {q ? (
            <button type="button" className="contacts__find-more" onClick={() => onFindPeople(q)}>
              <Icon name="userPlus" /> Search all users for “{q}”
            </button>
          ) : null}
        </>
      )}
    </div>
  );
}
