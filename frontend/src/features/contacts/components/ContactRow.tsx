import type { Contact } from "../../../api/types";
import { Avatar } from "../../../components/Avatar";
import { Badge } from "../../../components/Badge";
import { formatListTime } from "../../../lib/format";
import { Link } from "../../../lib/router";
import { contactLabel, previewText } from "../model";

type Props = { contact: Contact; meId: number; active: boolean; typing: boolean; now: Date };

/**
 * One conversation in the list. The link is the name, stretched over the whole row so the row is
 * one click target; its accessible name says everything the row shows (presence, unread count,
 * the last message), so the rest of the row is for the eye only.
 */
export function ContactRow({ contact, meId, active, typing, now }: Props) {
  const { user, last_message: last, unread_count: unread } = contact;
  const own = last?.sender_id === meId;
  const text = last ? previewText(last) : "";
  const preview = typing ? "typing…" : last ? (own ? `You: ${text}` : text) : "Say hello 👋";
  return (
    <li
      className={`contact-row ${active ? "is-active" : ""} ${unread > 0 ? "has-unread" : ""}`}
      data-room-id={contact.room_id}
      data-username={user.username}
    >
      <Avatar name={user.display_name} id={user.id} online={contact.online} />
      <span className="contact-row__main">
        <span className="contact-row__top">
          <Link
            to={`/chat/${contact.room_id}`}
            className="contact-row__link"
            aria-current={active ? "page" : undefined}
            aria-label={contactLabel(contact, meId, typing)}
            dir="auto"
          >
            {user.display_name}
          </Link>
          {last ? (
            <time className="contact-row__time" dateTime={last.created_at} aria-hidden="true">
              {formatListTime(last.created_at, now)}
            </time>
          ) : null}
        </span>
        <span className="contact-row__bottom" aria-hidden="true">
          <span className={`contact-row__preview ${typing ? "is-typing" : ""} ${last ? "" : "is-empty"}`} dir="auto">
            {preview}
          </span>
          <Badge count={unread} />
        </span>
      </span>
    </li>
  );
}
