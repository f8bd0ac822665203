import { useEffect, useLayoutEffect, useRef, type KeyboardEvent } from "react";
import { createPortal } from "react-dom";
import { Icon } from "../../../components/Icon";

/** The quick reactions offered on every message. */
export const QUICK_EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🙏", "🎉", "🔥"] as const;

type Props = {
  /** The element the menu opens next to (the message bubble). */
  anchor: HTMLElement;
  /** The button that toggles the menu: a press on it is not a click elsewhere. */
  trigger: HTMLElement | null;
  own: boolean;
  /** The emoji we already reacted with (shown pressed; choosing one takes it back). */
  mine: ReadonlySet<string>;
  onReact: (emoji: string, on: boolean) => void;
  onReply: () => void;
  onEdit: () => void;
  onDelete: () => void;
  onClose: () => void;
};

const MARGIN = 8;
const GAP = 6;

/** Where the menu goes: under the anchor if it fits, else above it, always inside the window. */
export function placeMenu(
  anchor: { top: number; bottom: number; left: number; right: number },
  menu: { width: number; height: number },
  view: { width: number; height: number },
  alignEnd: boolean,
): { top: number; left: number } {
  const below = anchor.bottom + GAP;
  const above = anchor.top - GAP - menu.height;
  const top = below + menu.height <= view.height - MARGIN || above < MARGIN ? below : above;
  const left = alignEnd ? anchor.right - menu.width : anchor.left;
  const clamp = (v: number, max: number) => Math.max(MARGIN, Math.min(v, max));
  return { top: clamp(top, view.height - menu.height - MARGIN), left: clamp(left, view.width - menu.width - MARGIN) };
}

/**
 * A message's actions: a row of quick reactions, then Reply (and Edit and Delete for our own
 * messages). Opens next to the message, closes on Escape (focus goes back to what opened it), on
 * a click elsewhere and when the reader scrolls the history.
 */
export function MessageMenu({ anchor, trigger, own, mine, onReact, onReply, onEdit, onDelete, onClose }: Props) {
  const ref = useRef<HTMLDivElement>(null);

  const closeRef = useRef(onClose);
  closeRef.current = onClose;

  // Placed on opening, and again when the window changes size (a phone turned, say) or the
  // history moves under it; the reader scrolling it closes the menu.
  useLayoutEffect(() => {
    const scroller = anchor.closest(".msglist__scroller");
    const place = () => {
      const el = ref.current;
      if (!el) return;
      const view = { width: document.documentElement.clientWidth, height: document.documentElement.clientHeight };
      // Set on the element itself, before the first paint (and focusable at once).
      const pos = placeMenu(anchor.getBoundingClientRect(), { width: el.offsetWidth, height: el.offsetHeight }, view, own);
      el.style.top = `${pos.top}px`;
      el.style.left = `${pos.left}px`;
    };
    const close = () => closeRef.current();
    place();
    window.addEventListener("resize", place);
    scroller?.addEventListener("scroll", place);
    scroller?.addEventListener("wheel", close, { passive: true });
    scroller?.addEventListener("touchmove", close, { passive: true });
    return () => {
      window.removeEventListener("resize", place);
      scroller?.removeEventListener("scroll", place);
      scroller?.removeEventListener("wheel", close);
      scroller?.removeEventListener("touchmove", close);
    };
  }, [anchor, own]);

  useEffect(() => {
    const menu = ref.current;
    const opener = document.activeElement;
    menu?.querySelector<HTMLElement>("button")?.focus({ preventScroll: true });
    const close = () => closeRef.current();
    const away = (e: Event) => {
      const t = e.target as Node;
      if (!menu?.contains(t) && !trigger?.contains(t)) close();
    };
    document.addEventListener("pointerdown", away, true);
    return () => {
      document.removeEventListener("pointerdown", away, true);
      // Focus goes back where it was, unless the choice moved it on (to the edit box, say).
      const focus = document.activeElement;
      if ((focus === null || focus === document.body || menu?.contains(focus)) && opener instanceof HTMLElement)
        opener.focus({ preventScroll: true });
    };
  }, [anchor, trigger]);

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      onClose();
      return;
    }
    const buttons = Array.from(ref.current?.querySelectorAll<HTMLButtonElement>("button") ?? []);
    const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
    const move = (to: number) => {
      e.preventDefault();
      buttons[(to + buttons.length) % buttons.length]?.focus();
    };
    // Arrow keys move through the choices; Tab stays inside too.
    if (e.key === "ArrowRight" || e.key === "ArrowDown") move(i + 1);
    else if (e.key === "ArrowLeft" || e.key === "ArrowUp") move(i - 1);
    else if (e.key === "Home") move(0);
    else if (e.key === "End") move(buttons.length - 1);
    else if (e.key === "Tab") move(e.shiftKey ? i - 1 : i + 1);
  };

  const pick = (fn: () => void) => () => {
    onClose();
    fn();
  };

  return createPortal(
    <div
      ref={ref}
      className="msg-menu"
      role="dialog"
      aria-label="Message actions"
      onKeyDown={onKeyDown}
    >
      <div className="msg-menu__emoji" role="group" aria-label="React">
        {QUICK_EMOJI.map((emoji) => {
          const on = mine.has(emoji);
          return (
            <button
              key={emoji}
              type="button"
              className={`msg-menu__emoji-btn ${on ? "is-on" : ""}`}
              aria-label={`React with ${emoji}`}
              aria-pressed={on}
              onClick={pick(() => onReact(emoji, !on))}
            >
              {emoji}
            </button>
          );
        })}
      </div>
      <div className="msg-menu__items">
        <button type="button" className="msg-menu__item" onClick={pick(onReply)}>
          <Icon name="reply" /> Reply
        </button>
        {own ? (
          <>
            <button type="button" className="msg-menu__item" onClick={pick(onEdit)}>
              <Icon name="edit" /> Edit
            </button>
            <button type="button" className="msg-menu__item is-danger" onClick={pick(onDelete)}>
              <Icon name="trash" /> Delete
            </button>
          </>
        ) : null}
      </div>
    </div>,
    document.body,
  );
}
