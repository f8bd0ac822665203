import { memo, useCallback, useMemo, useRef, useState, type CSSProperties, type PointerEvent } from "react";
import { Icon } from "../../../components/Icon";
import { formatClock } from "../../../lib/format";
import type { ChatItem, DeliveryState, ReactionChip, ReplyPreview } from "../model";
import { mediaWidth, MessageAttachments, splitAttachments } from "./Attachments";
import { EditBox } from "./EditBox";
import { Lightbox } from "./Lightbox";
import { MessageMenu } from "./MessageMenu";
import { MessageText } from "./MessageText";

/** What a message can do, handed down from the conversation. */
export type MessageHandlers = {
  /** A user's name as the view shows it ("You" for us). */
  nameOf: (userId: number) => string;
  onRetry: (clientMsgId: string) => void;
  onDiscard: (clientMsgId: string) => void;
  onReply: (item: ChatItem) => void;
  onStartEdit: (id: number) => void;
  onCancelEdit: () => void;
  onSaveEdit: (id: number, body: string) => Promise<void>;
  onDelete: (item: ChatItem) => void;
  onReact: (id: number, emoji: string, on: boolean) => void;
  onJumpTo: (id: number) => void;
};

type Props = {
  item: ChatItem;
  position: "single" | "first" | "middle" | "last";
  editing: boolean;
  highlighted: boolean;
  handlers: MessageHandlers;
};

const STATE_LABEL: Record<DeliveryState, string> = {
  sending: "Sending",
  sent: "Sent",
  read: "Read",
  failed: "Not sent",
};

const LONG_PRESS_MS = 450;
const LONG_PRESS_SLOP_PX = 10;

function formatEdited(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** One message: its bubble (quote, text, time, state), its reactions, and its actions. */
export const Bubble = memo(function Bubble({ item, position, editing, highlighted, handlers }: Props) {
  const { nameOf } = handlers;
  const [menuOpen, setMenuOpen] = useState(false);
  const bubbleRef = useRef<HTMLDivElement>(null);
  const triggerRef = useRef<HTMLButtonElement>(null);
  const press = useRef<{ timer: number; x: number; y: number } | null>(null);
  /** A long press just opened the menu: the click that ends it must not open a photo too. */
  const longPressed = useRef(false);
  const [viewing, setViewing] = useState<number | null>(null);
  const id = item.id;
  // Only stored messages that still exist have actions.
  const actionable = id !== null && !item.deleted && !editing;
  const closeMenu = useCallback(() => setMenuOpen(false), []);
  const mine = useMemo(() => new Set(item.reactions.filter((r) => r.mine).map((r) => r.emoji)), [item.reactions]);

  // A long press opens the actions on a touch screen.
  const cancelPress = () => {
    if (press.current) window.clearTimeout(press.current.timer);
    press.current = null;
  };
  const onPointerDown = (e: PointerEvent) => {
    if (!actionable || e.pointerType !== "touch") return;
    cancelPress();
    longPressed.current = false;
    press.current = {
      x: e.clientX,
      y: e.clientY,
      timer: window.setTimeout(() => {
        longPressed.current = true;
        setMenuOpen(true);
      }, LONG_PRESS_MS),
    };
  };
  const onPointerMove = (e: PointerEvent) => {
    const p = press.current;
    if (p && Math.hypot(e.clientX - p.x, e.clientY - p.y) > LONG_PRESS_SLOP_PX) cancelPress();
  };

  const who = item.own ? "You" : nameOf(item.senderId);
  const { photos, files } = useMemo(() => splitAttachments(item.attachments), [item.attachments]);
  const hasMedia = !item.deleted && item.attachments.length > 0;
  const hasText = item.body.trim() !== "";
  // Photos alone: the time sits on the last photo, with no empty line of text under it.
  const overlayMeta = hasMedia && !hasText && !editing && files.length === 0;
  const openPhoto = useCallback((index: number) => {
    if (longPressed.current) {
      longPressed.current = false;
      return;
    }
    setViewing(index);
  }, []);
  const body = item.deleted ? (
    <em className="msg__deleted">message deleted</em>
  ) : editing && id !== null ? (
    <EditBox initial={item.body} onSave={(text) => handlers.onSaveEdit(id, text)} onCancel={handlers.onCancelEdit} />
  ) : hasText || !hasMedia ? (
    <MessageText text={item.body} />
  ) : null;
  const meta = editing ? null : (
    <span className={`msg__meta ${overlayMeta ? "is-overlay" : ""}`}>
      {item.editedAt ? (
        <span className="msg__edited" title={`Edited ${formatEdited(item.editedAt)}`}>
          edited<span className="sr-only"> {formatEdited(item.editedAt)},</span>
        </span>
      ) : null}
      <time dateTime={item.createdAt}>{formatClock(item.createdAt)}</time>
      {item.state ? <DeliveryIcon state={item.state} /> : null}
    </span>
  );
  const mediaStyle = hasMedia ? ({ "--media-width": `${mediaWidth(photos, files, hasText || editing)}px` } as CSSProperties) : undefined;
  return (
    <div
      className={`msg msg--${position} ${item.own ? "is-own" : "is-peer"} ${item.state ? `is-${item.state}` : ""} ${item.deleted ? "is-deleted" : ""} ${editing ? "is-editing" : ""} ${highlighted ? "is-highlighted" : ""} ${menuOpen ? "has-menu" : ""}`}
      data-seq={item.seq ?? undefined}
      data-id={id ?? undefined}
      data-client-msg-id={item.clientMsgId}
      data-state={item.state ?? undefined}
    >
      <div className="msg__row">
        {/* The bubble takes the direction of its text (Arabic and Hebrew run right to left). */}
        <div
          className={`msg__bubble ${hasMedia ? "has-media" : ""} ${photos.length > 0 && hasMedia ? "has-photos" : ""} ${overlayMeta ? "is-media-only" : ""}`}
          style={mediaStyle}
          dir="auto"
          ref={bubbleRef}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={cancelPress}
          onPointerCancel={cancelPress}
          onContextMenu={(e) => {
            if (press.current || menuOpen) e.preventDefault();
          }}
        >
          <span className="sr-only" dir="auto">
            {who}:{" "}
          </span>
          {item.replyTo ? <Quote reply={item.replyTo} nameOf={nameOf} onJumpTo={handlers.onJumpTo} /> : null}
          {hasMedia ? <MessageAttachments photos={photos} files={files} withText={hasText || editing} onOpen={openPhoto} /> : null}
          {overlayMeta ? (
            meta
          ) : hasMedia ? (
            // Under photos and files, the text and the time get their own padded block.
            <div className="msg__caption">
              {body}
              {meta}
            </div>
          ) : (
            <>
              {body}
              {meta}
            </>
          )}
        </div>
        {actionable ? (
          <button
            ref={triggerRef}
            type="button"
            className="msg__more"
            aria-label="Message actions"
            aria-haspopup="dialog"
            aria-expanded={menuOpen}
            onClick={() => setMenuOpen((o) => !o)}
          >
            <Icon name="more" strokeWidth={3.2} />
          </button>
        ) : null}
      </div>
      {item.reactions.length > 0 && id !== null ? (
        <Reactions chips={item.reactions} nameOf={nameOf} onToggle={(emoji, on) => handlers.onReact(id, emoji, on)} />
      ) : null}
      {item.state === "failed" ? (
        <div className="msg__failed" role="alert">
          Not sent.{" "}
          <button type="button" className="link-button" onClick={() => handlers.onRetry(item.clientMsgId)}>
            Retry
          </button>{" "}
          ·{" "}
          <button type="button" className="link-button" onClick={() => handlers.onDiscard(item.clientMsgId)}>
            Delete
          </button>
        </div>
      ) : null}
      {viewing !== null && hasMedia && photos.length > 0 ? <Lightbox photos={photos} start={viewing} onClose={() => setViewing(null)} /> : null}
      {menuOpen && actionable && bubbleRef.current ? (
        <MessageMenu
          anchor={bubbleRef.current}
          trigger={triggerRef.current}
          own={item.own}
          mine={mine}
          onClose={closeMenu}
          onReact={(emoji, on) => handlers.onReact(id, emoji, on)}
          onReply={() => handlers.onReply(item)}
          onEdit={() => handlers.onStartEdit(id)}
          onDelete={() => handlers.onDelete(item)}
        />
      ) : null}
    </div>
  );
});

/** The message a reply answers: who wrote it and its first line; a click shows the original. */
function Quote({ reply, nameOf, onJumpTo }: { reply: ReplyPreview; nameOf: (id: number) => string; onJumpTo: (id: number) => void }) {
  if (reply.kind === "deleted") {
    return (
      <span className="msg__quote is-gone" dir="auto">
        <em>original message deleted</em>
      </span>
    );
  }
  return (
    <button type="button" className="msg__quote" dir="auto" onClick={() => onJumpTo(reply.id)} title="Show the original message">
      <span className="sr-only">In reply to </span>
      {reply.kind === "message" ? (
        <>
          <span className="msg__quote-name" dir="auto">
            {nameOf(reply.senderId)}
          </span>
          <span className="msg__quote-text" dir="auto">
            {reply.excerpt}
          </span>
        </>
      ) : (
        <span className="msg__quote-text">an earlier message</span>
      )}
    </button>
  );
}

/** "You, Bob Marley" — who reacted, in the order they did. */
function reactedBy(chip: ReactionChip, nameOf: (id: number) => string): string {
  return chip.userIds.map(nameOf).join(", ");
}

function Reactions({ chips, nameOf, onToggle }: { chips: ReactionChip[]; nameOf: (id: number) => string; onToggle: (emoji: string, on: boolean) => void }) {
  return (
    <div className="msg__reactions" role="group" aria-label="Reactions">
      {chips.map((c) => {
        const names = reactedBy(c, nameOf);
        return (
          <button
            key={c.emoji}
            type="button"
            className={`reaction ${c.mine ? "is-mine" : ""}`}
            aria-pressed={c.mine}
            aria-label={`${c.emoji} ${c.userIds.length}: ${names}`}
            title={names}
            onClick={() => onToggle(c.emoji, !c.mine)}
          >
            <span className="reaction__emoji">{c.emoji}</span>
            <span className="reaction__count">{c.userIds.length}</span>
          </button>
        );
      })}
    </div>
  );
}

function DeliveryIcon({ state }: { state: DeliveryState }) {
  const name = state === "sending" ? "clock" : state === "sent" ? "check" : state === "read" ? "checks" : "alert";
  return (
    <span className={`msg__state msg__state--${state}`} title={STATE_LABEL[state]}>
      <Icon name={name} title={STATE_LABEL[state]} />
    </span>
  );
}
