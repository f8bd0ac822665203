import type { Contact } from "../../../api/types";
import { Avatar } from "../../../components/Avatar";
import { Badge } from "../../../components/Badge";
import { formatListTime } from "../../../lib/format";
import { Link } from "../../../lib/router";

type Props = { contact: Contact; meId: number; active: boolean; typing: boolean; now: Date };

export function ContactRow({ contact, meId, active, typing, now }: Props) {
  const { user, last_message: last, unread_count: unread, online } = contact;
  const own = last?.sender_id === meId;
  // A message an administrator deleted has an empty body and `deleted_at`.
  const text = last ? (last.deleted_at != null ? "message deleted" : last.body) : "";
  const preview = typing ? "typing…" : last ? (own ? `You: ${text}` : text) : "Say hello 👋";
  const label = [
    user.display_name,
    online ? "online" : "offline",
    unread > 0 ? `${unread} unread ${unread === 1 ? "message" : "messages"}` : null,
    last ? `last message ${own ? "from you" : ""}: ${text.slice(0, 80)}` : "no messages yet",
  ]
    .filter(Boolean)
    .join(", ");
  return (
    <li className="contact-row-item">
      <Link
        to={`/chat/${contact.room_id}`}
        className={`contact-row ${active ? "is-active" : ""} ${unread > 0 ? "has-unread" : ""}`}
        aria-current={active ? "page" : undefined}
        aria-label={label}
        data-room-id={contact.room_id}
        data-username={user.username}
      >
        <Avatar name={user.display_name} id={user.id} online={online} />
        <span className="contact-row__main">
          <span className="contact-row__top">
            <span className="contact-row__name">{user.display_name}</span>
            {last ? (
              <time className="contact-row__time" dateTime={last.created_at}>
                {formatListTime(last.created_at, now)}
              </time>
            ) : null}
          </span>
          <span className="contact-row__bottom">
            <span className={`contact-row__preview ${typing ? "is-typing" : ""} ${last ? "" : "is-empty"}`}>{preview}</span>
            <Badge count={unread} label={`${unread} unread`} />
          </span>
        </span>
      </Link>
    </li>
  );
}
