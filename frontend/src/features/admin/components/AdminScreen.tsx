// The administration screen: users, rooms, statistics and the audit log, each a tab; a user's
// and a room's detail pages below them. Only reachable for administrators (see app/routes/admin).
import { useState, type FormEvent, type ReactNode } from "react";
import { Button } from "../../../components/Button";
import { Icon } from "../../../components/Icon";
import { Spinner } from "../../../components/Spinner";
import { ApiError } from "../../../lib/api-client";
import { attachmentsOf, formatBytes, isPhoto } from "../../../lib/attachments";
import { useDebounced } from "../../../lib/hooks";
import { Link, navigate } from "../../../lib/router";
import { useApi } from "../../../lib/services";
import * as adminApi from "../api";
import type { AdminRoom, AdminUser, AuditEntry, Message } from "../api";
import { useAsync } from "../hooks/useAsync";
import { appendPage, describeAudit, formatCount, formatTime, userStatus } from "../model";

export type AdminView =
  | { tab: "users" }
  | { tab: "user"; id: number }
  | { tab: "rooms" }
  | { tab: "room"; id: number }
  | { tab: "stats" }
  | { tab: "audit" };

const TABS: { tab: "users" | "rooms" | "stats" | "audit"; label: string; to: string }[] = [
  { tab: "users", label: "Users", to: "/admin" },
  { tab: "rooms", label: "Rooms", to: "/admin/rooms" },
  { tab: "stats", label: "Statistics", to: "/admin/stats" },
  { tab: "audit", label: "Audit log", to: "/admin/audit" },
];

export function AdminScreen({ view }: { view: AdminView }) {
  const current = view.tab === "user" ? "users" : view.tab === "room" ? "rooms" : view.tab;
  return (
    <div className="admin">
      <header className="admin__header">
        <div className="admin__title">
          <Icon name="shield" />
          <h1>Administration</h1>
        </div>
        <nav className="admin__tabs" aria-label="Administration">
          {TABS.map((t) => (
            <Link key={t.tab} to={t.to} className={`admin__tab ${current === t.tab ? "is-active" : ""}`} aria-current={current === t.tab ? "page" : undefined}>
              {t.label}
            </Link>
          ))}
        </nav>
        <Link to="/" className="btn btn--subtle admin__back">
          <Icon name="back" /> Back to chats
        </Link>
      </header>
      <main className="admin__body">
        {view.tab === "users" ? <UsersView /> : null}
        {view.tab === "user" ? <UserDetail key={view.id} id={view.id} /> : null}
        {view.tab === "rooms" ? <RoomsView /> : null}
        {view.tab === "room" ? <RoomDetail key={view.id} id={view.id} /> : null}
        {view.tab === "stats" ? <StatsView /> : null}
        {view.tab === "audit" ? <AuditView /> : null}
      </main>
    </div>
  );
}

function Loading() {
  return (
    <div className="admin__loading">
      <Spinner />
    </div>
  );
}

function Failure({ text, onRetry }: { text: string; onRetry: () => void }) {
  return (
    <div className="admin__error" role="alert">
      {text}{" "}
      <Button variant="subtle" onClick={onRetry}>
        Retry
      </Button>
    </div>
  );
}

function StatusPill({ user }: { user: AdminUser }) {
  const s = userStatus(user);
  return <span className={`admin-pill admin-pill--${s}`}>{s}</span>;
}

/** A list with cursor paging: the first page from `load(null)`, more with "Load more". */
function usePaged<T extends { id: number }>(
  load: (cursor: number | null, signal?: AbortSignal) => Promise<{ items: T[]; next: number | null }>,
  deps: readonly unknown[],
) {
  const first = useAsync((signal) => load(null, signal), deps);
  const [extra, setExtra] = useState<{ key: unknown; items: T[]; next: number | null } | null>(null);
  const [busy, setBusy] = useState(false);
  const base = first.data;
  const mine = extra && extra.key === base ? extra : null;
  const items = base ? appendPage(base.items, mine?.items ?? []) : [];
  const next = mine ? mine.next : (base?.next ?? null);
  const more = async () => {
    if (next === null || !base) return;
    setBusy(true);
    try {
      const page = await load(next);
      setExtra({ key: base, items: appendPage(mine?.items ?? [], page.items), next: page.next });
    } finally {
      setBusy(false);
    }
  };
  return { ...first, items, next, more, busy };
}

function MoreButton({ next, busy, onMore }: { next: number | null; busy: boolean; onMore: () => void }) {
  if (next === null) return null;
  return (
    <div className="admin__more">
      <Button variant="subtle" busy={busy} onClick={onMore}>
        Load more
      </Button>
    </div>
  );
}

// ---- users ---------------------------------------------------------------------------------

function UsersView() {
  const api = useApi();
  const [q, setQ] = useState("");
  const query = useDebounced(q, 250);
  const [creating, setCreating] = useState(false);
  const list = usePaged<AdminUser>(
    async (cursor, signal) => {
      const p = await adminApi.listUsers(api, query, cursor, signal);
      return { items: p.users, next: p.next_cursor ?? null };
    },
    [api, query],
  );
  return (
    <section className="admin__section" aria-label="Users">
      <div className="admin__toolbar">
        <label className="admin__search">
          <Icon name="search" />
          <input
            type="search"
            placeholder="Search by username or name"
            value={q}
            onChange={(e) => setQ(e.target.value)}
            aria-label="Search users"
          />
        </label>
        <Button onClick={() => setCreating((c) => !c)}>
          <Icon name="userPlus" /> New user
        </Button>
      </div>
      {creating ? (
        <CreateUserForm
          onDone={(u) => {
            setCreating(false);
            navigate(`/admin/users/${u.id}`);
          }}
          onCancel={() => setCreating(false)}
        />
      ) : null}
      {list.loading && !list.data ? <Loading /> : null}
      {list.error ? <Failure text={list.error} onRetry={list.reload} /> : null}
      {list.data ? (
        <div className="admin__table-wrap">
          <table className="admin-table">
            <thead>
              <tr>
                <th>User</th>
                <th>Status</th>
                <th className="num">Contacts</th>
                <th className="num">Rooms</th>
                <th className="num">Messages</th>
                <th>Last seen</th>
                <th>Joined</th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((u) => (
                <tr key={u.id} className="is-clickable" onClick={() => navigate(`/admin/users/${u.id}`)} data-username={u.username}>
                  <td>
                    <Link to={`/admin/users/${u.id}`} className="admin-user" onClick={(e) => e.stopPropagation()}>
                      <span className="admin-user__name">{u.display_name}</span>
                      <span className="admin-user__handle">
                        @{u.username}
                        {u.is_admin ? <span className="admin-pill admin-pill--admin">admin</span> : null}
                      </span>
                    </Link>
                  </td>
                  <td>
                    <StatusPill user={u} />
                  </td>
                  <td className="num">{formatCount(u.contacts_count)}</td>
                  <td className="num">{formatCount(u.rooms_count)}</td>
                  <td className="num">{formatCount(u.messages_count)}</td>
                  <td>{u.online ? "now" : formatTime(u.last_seen_at)}</td>
                  <td>{formatTime(u.created_at)}</td>
                </tr>
              ))}
              {list.items.length === 0 ? (
                <tr>
                  <td colSpan={7} className="admin-table__empty">
                    No users match.
                  </td>
                </tr>
              ) : null}
            </tbody>
          </table>
        </div>
      ) : null}
      <MoreButton next={list.next} busy={list.busy} onMore={() => void list.more()} />
    </section>
  );
}

function CreateUserForm({ onDone, onCancel }: { onDone: (u: AdminUser) => void; onCancel: () => void }) {
  const api = useApi();
  const [username, setUsername] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [isAdmin, setIsAdmin] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string>>({});
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setFields({});
    try {
      const body: { username: string; password: string; display_name?: string; is_admin: boolean } = { username, password, is_admin: isAdmin };
      if (displayName.trim()) body.display_name = displayName;
      onDone(await adminApi.createUser(api, body));
    } catch (err) {
      if (err instanceof ApiError) {
        setError(err.message);
        setFields(err.fields);
      } else setError("Something went wrong.");
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="admin-card admin-form" onSubmit={(e) => void submit(e)} aria-label="New user">
      <h2>New user</h2>
      <div className="admin-form__grid">
        <Field label="Username" error={fields.username}>
          <input value={username} onChange={(e) => setUsername(e.target.value)} required autoComplete="off" />
        </Field>
        <Field label="Display name (optional)" error={fields.display_name}>
          <input value={displayName} onChange={(e) => setDisplayName(e.target.value)} autoComplete="off" />
        </Field>
        <Field label="Password" error={fields.password}>
          <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} required autoComplete="new-password" />
        </Field>
        <label className="admin-form__check">
          <input type="checkbox" checked={isAdmin} onChange={(e) => setIsAdmin(e.target.checked)} /> Administrator
        </label>
      </div>
      {error ? (
        <p className="admin__error" role="alert">
          {error}
        </p>
      ) : null}
      <div className="admin-form__actions">
        <Button type="submit" busy={busy}>
          Create
        </Button>
        <Button variant="ghost" onClick={onCancel}>
          Cancel
        </Button>
      </div>
    </form>
  );
}

function Field({ label, error, children }: { label: string; error?: string; children: ReactNode }) {
  return (
    <label className="admin-field">
      <span className="admin-field__label">{label}</span>
      {children}
      {error ? <span className="admin-field__error">{error}</span> : null}
    </label>
  );
}

/** A button that asks for a second click before it acts. */
function ConfirmButton({
  label,
  confirm,
  variant = "subtle",
  onConfirm,
}: {
  label: string;
  confirm: string;
  variant?: "subtle" | "danger" | "primary";
  onConfirm: () => Promise<void>;
}) {
  const [armed, setArmed] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!armed)
    return (
      <Button variant={variant} onClick={() => setArmed(true)}>
        {label}
      </Button>
    );
  return (
    <span className="admin-confirm">
      <Button
        variant="danger"
        busy={busy}
        onClick={() => {
          setBusy(true);
          void onConfirm().finally(() => {
            setBusy(false);
            setArmed(false);
          });
        }}
      >
        {confirm}
      </Button>
      <Button variant="ghost" onClick={() => setArmed(false)}>
        Cancel
      </Button>
    </span>
  );
}

function UserDetail({ id }: { id: number }) {
  const api = useApi();
  const user = useAsync((signal) => adminApi.getUser(api, id, signal), [api, id]);
  const [override, setOverride] = useState<AdminUser | null>(null);
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | null>(null);
  const [password, setPassword] = useState("");
  const rooms = useAsync((signal) => adminApi.listRooms(api, { userId: id }, signal), [api, id]);
  const u = override && user.data && override.id === user.data.id ? override : user.data;

  const act = async (f: () => Promise<AdminUser | void>, done: string) => {
    setNotice(null);
    try {
      const r = await f();
      if (r) setOverride(r);
      setNotice({ ok: true, text: done });
    } catch (e) {
      setNotice({ ok: false, text: e instanceof ApiError ? e.message : "Something went wrong." });
    }
  };

  if (user.loading && !user.data) return <Loading />;
  if (user.error || !u) return <Failure text={user.error ?? "Not found."} onRetry={user.reload} />;
  return (
    <section className="admin__section" aria-label={`User ${u.username}`}>
      <Link to="/admin" className="admin__crumb">
        <Icon name="back" /> All users
      </Link>
      <div className="admin-card admin-detail">
        <div className="admin-detail__head">
          <div>
            <h2>{u.display_name}</h2>
            <p className="admin-user__handle">
              @{u.username} · id {u.id}
              {u.is_admin ? <span className="admin-pill admin-pill--admin">admin</span> : null}
            </p>
          </div>
          <StatusPill user={u} />
        </div>
        <dl className="admin-facts">
          <div>
            <dt>Contacts</dt>
            <dd>{formatCount(u.contacts_count)}</dd>
          </div>
          <div>
            <dt>Rooms</dt>
            <dd>{formatCount(u.rooms_count)}</dd>
          </div>
          <div>
            <dt>Messages sent</dt>
            <dd>{formatCount(u.messages_count)}</dd>
          </div>
          <div>
            <dt>Last seen</dt>
            <dd>{u.online ? "online now" : formatTime(u.last_seen_at)}</dd>
          </div>
          <div>
            <dt>Joined</dt>
            <dd>{formatTime(u.created_at)}</dd>
          </div>
          <div>
            <dt>Deactivated</dt>
            <dd>{formatTime(u.deactivated_at)}</dd>
          </div>
        </dl>
        <div className="admin-actions">
          {u.deactivated_at ? (
            <Button onClick={() => void act(() => adminApi.setActive(api, u.id, true), "Account reactivated.")}>Reactivate</Button>
          ) : (
            <ConfirmButton
              label="Deactivate"
              confirm="Deactivate now"
              variant="danger"
              onConfirm={() => act(() => adminApi.setActive(api, u.id, false), "Account deactivated; their sessions were closed.")}
            />
          )}
          {u.is_admin ? (
            <ConfirmButton
              label="Remove admin"
              confirm="Remove admin role"
              onConfirm={() => act(() => adminApi.setAdmin(api, u.id, false), "Admin role removed.")}
            />
          ) : (
            <ConfirmButton
              label="Make admin"
              confirm="Grant admin role"
              onConfirm={() => act(() => adminApi.setAdmin(api, u.id, true), "Admin role granted.")}
            />
          )}
          <form
            className="admin-actions__password"
            onSubmit={(e) => {
              e.preventDefault();
              void act(() => adminApi.resetPassword(api, u.id, password), "Password changed; their sessions were signed out.").then(() => setPassword(""));
            }}
          >
            <input
              type="password"
              placeholder="New password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete="new-password"
              aria-label="New password"
            />
            <Button type="submit" variant="subtle" disabled={password.length === 0}>
              Reset password
            </Button>
          </form>
        </div>
        {notice ? (
          <p className={notice.ok ? "admin__ok" : "admin__error"} role="status">
            {notice.text}
          </p>
        ) : null}
      </div>
      <h3 className="admin__subtitle">Rooms</h3>
      {rooms.data ? <RoomsTable rooms={rooms.data.rooms} /> : rooms.loading ? <Loading /> : null}
    </section>
  );
}

// ---- rooms ---------------------------------------------------------------------------------

function RoomsTable({ rooms }: { rooms: AdminRoom[] }) {
  return (
    <div className="admin__table-wrap">
      <table className="admin-table">
        <thead>
          <tr>
            <th>Room</th>
            <th>Members</th>
            <th className="num">Messages</th>
            <th>Last activity</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {rooms.map((r) => (
            <tr key={r.id} className="is-clickable" onClick={() => navigate(`/admin/rooms/${r.id}`)} data-room-id={r.id}>
              <td>
                <Link to={`/admin/rooms/${r.id}`} onClick={(e) => e.stopPropagation()}>
                  #{r.id}
                </Link>
              </td>
              <td>{r.members.map((m) => `@${m.username}`).join(" · ")}</td>
              <td className="num">{formatCount(r.message_count)}</td>
              <td>{formatTime(r.last_activity_at)}</td>
              <td>{formatTime(r.created_at)}</td>
            </tr>
          ))}
          {rooms.length === 0 ? (
            <tr>
              <td colSpan={5} className="admin-table__empty">
                No rooms.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </div>
  );
}

function RoomsView() {
  const api = useApi();
  const list = usePaged<AdminRoom>(
    async (cursor, signal) => {
      const p = await adminApi.listRooms(api, { before: cursor }, signal);
      return { items: p.rooms, next: p.next_cursor ?? null };
    },
    [api],
  );
  return (
    <section className="admin__section" aria-label="Rooms">
      {list.loading && !list.data ? <Loading /> : null}
      {list.error ? <Failure text={list.error} onRetry={list.reload} /> : null}
      {list.data ? <RoomsTable rooms={list.items} /> : null}
      <MoreButton next={list.next} busy={list.busy} onMore={() => void list.more()} />
    </section>
  );
}

function RoomDetail({ id }: { id: number }) {
  const api = useApi();
  const room = useAsync((signal) => adminApi.getRoom(api, id, signal), [api, id]);
  const first = useAsync((signal) => adminApi.roomMessages(api, id, null, signal), [api, id]);
  const [older, setOlder] = useState<{ messages: Message[]; hasMore: boolean } | null>(null);
  const [changed, setChanged] = useState<Map<number, Message>>(new Map());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (room.loading && !room.data) return <Loading />;
  if (room.error || !room.data) return <Failure text={room.error ?? "Not found."} onRetry={room.reload} />;
  const r = room.data;
  const names = new Map(r.members.map((m) => [m.id, m.display_name]));
  const messages = [...(older?.messages ?? []), ...(first.data?.messages ?? [])].map((m) => changed.get(m.id) ?? m);
  const hasMore = older ? older.hasMore : (first.data?.has_more ?? false);
  const loadOlder = async () => {
    const oldest = messages[0]?.seq;
    if (oldest === undefined) return;
    setBusy(true);
    try {
      const p = await adminApi.roomMessages(api, id, oldest);
      setOlder({ messages: [...p.messages, ...(older?.messages ?? [])], hasMore: p.has_more });
    } finally {
      setBusy(false);
    }
  };
  const remove = async (m: Message) => {
    setError(null);
    try {
      const tomb = await adminApi.deleteMessage(api, m.id);
      setChanged((prev) => new Map(prev).set(tomb.id, tomb));
    } catch (e) {
      setError(e instanceof ApiError ? e.message : "Something went wrong.");
    }
  };
  return (
    <section className="admin__section" aria-label={`Room ${r.id}`}>
      <Link to="/admin/rooms" className="admin__crumb">
        <Icon name="back" /> All rooms
      </Link>
      <div className="admin-card admin-detail">
        <div className="admin-detail__head">
          <div>
            <h2>
              Room #{r.id}: {r.members.map((m) => m.display_name).join(" & ")}
            </h2>
            <p className="admin-user__handle">
              {r.members.map((m) => (
                <Link key={m.id} to={`/admin/users/${m.id}`} className="admin__member">
                  @{m.username}
                </Link>
              ))}
              · {formatCount(r.message_count)} messages · last activity {formatTime(r.last_activity_at)}
            </p>
          </div>
        </div>
      </div>
      {error ? (
        <p className="admin__error" role="alert">
          {error}
        </p>
      ) : null}
      {first.loading && !first.data ? <Loading /> : null}
      {hasMore ? (
        <div className="admin__more">
          <Button variant="subtle" busy={busy} onClick={() => void loadOlder()}>
            Load older
          </Button>
        </div>
      ) : null}
      <ol className="admin-messages">
        {messages.map((m) => (
          <li key={m.id} className={`admin-message ${m.deleted_at ? "is-deleted" : ""}`} data-seq={m.seq}>
            <div className="admin-message__meta">
              <span className="admin-message__seq">#{m.seq}</span>
              <strong>{names.get(m.sender_id) ?? `user ${m.sender_id}`}</strong>
              <time dateTime={m.created_at}>{formatTime(m.created_at)}</time>
            </div>
            <div className="admin-message__body">
              {m.deleted_at ? <em>message deleted {formatTime(m.deleted_at)}</em> : m.body}
            </div>
            {attachmentsOf(m).length > 0 ? (
              <ul className="admin-message__files" aria-label="Attachments">
                {attachmentsOf(m).map((a) => (
                  <li key={a.id}>
                    <a href={a.url} target="_blank" rel="noopener noreferrer" dir="auto">
                      {isPhoto(a) ? "🖼" : "📎"} {a.name}
                    </a>{" "}
                    <span>{formatBytes(a.size)}</span>
                  </li>
                ))}
              </ul>
            ) : null}
            {m.deleted_at ? null : (
              <div className="admin-message__actions">
                <ConfirmButton label="Delete" confirm="Delete message" onConfirm={() => remove(m)} />
              </div>
            )}
          </li>
        ))}
        {first.data && messages.length === 0 ? <li className="admin-table__empty">No messages yet.</li> : null}
      </ol>
    </section>
  );
}

// ---- statistics and audit ------------------------------------------------------------------

function StatsView() {
  const api = useApi();
  const stats = useAsync((signal) => adminApi.getStats(api, signal), [api]);
  if (stats.loading && !stats.data) return <Loading />;
  if (stats.error || !stats.data) return <Failure text={stats.error ?? "No data."} onRetry={stats.reload} />;
  const s = stats.data;
  const cards: [string, number, string?][] = [
    ["Users", s.users, `${formatCount(s.admins)} admins · ${formatCount(s.deactivated_users)} deactivated`],
    ["Online now", s.online_users, `${formatCount(s.connections)} connections`],
    ["Rooms", s.rooms],
    ["Messages", s.messages],
    ["Messages, last hour", s.messages_last_hour],
    ["Messages, last 24 hours", s.messages_last_day],
  ];
  return (
    <section className="admin__section" aria-label="Statistics">
      <div className="admin-stats">
        {cards.map(([label, value, sub]) => (
          <div key={label} className="admin-card admin-stat">
            <span className="admin-stat__label">{label}</span>
            <span className="admin-stat__value">{formatCount(value)}</span>
            {sub ? <span className="admin-stat__sub">{sub}</span> : null}
          </div>
        ))}
      </div>
      <div className="admin__more">
        <Button variant="subtle" onClick={stats.reload}>
          <Icon name="retry" /> Refresh
        </Button>
      </div>
    </section>
  );
}

function AuditView() {
  const api = useApi();
  const list = usePaged<AuditEntry>(
    async (cursor, signal) => {
      const p = await adminApi.listAudit(api, cursor, signal);
      return { items: p.entries, next: p.next_cursor ?? null };
    },
    [api],
  );
  return (
    <section className="admin__section" aria-label="Audit log">
      {list.loading && !list.data ? <Loading /> : null}
      {list.error ? <Failure text={list.error} onRetry={list.reload} /> : null}
      {list.data ? (
        <div className="admin__table-wrap">
          <table className="admin-table">
            <thead>
              <tr>
                <th>When</th>
                <th>What</th>
                <th>Action</th>
                <th>Target</th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((e) => (
                <tr key={e.id} data-action={e.action}>
                  <td>{formatTime(e.created_at)}</td>
                  <td>{describeAudit(e)}</td>
                  <td>
                    <code>{e.action}</code>
                  </td>
                  <td>
                    {e.target_type === "user" ? (
                      <Link to={`/admin/users/${e.target_id}`}>user {e.target_id}</Link>
                    ) : (
                      `${e.target_type} ${e.target_id}`
                    )}
                  </td>
                </tr>
              ))}
              {list.items.length === 0 ? (
                <tr>
                  <td colSpan={4} className="admin-table__empty">
                    Nothing recorded yet.
                  </td>
                </tr>
              ) : null}
            </tbody>
          </table>
        </div>
      ) : null}
      <MoreButton next={list.next} busy={list.busy} onMore={() => void list.more()} />
    </section>
  );
}

