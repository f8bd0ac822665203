import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { Icon } from "../../../components/Icon";
import { Spinner } from "../../../components/Spinner";
import { useNow } from "../../../lib/hooks";
import { groupItems, type ChatItem } from "../model";
import { Bubble, type MessageHandlers } from "./Bubble";

type Props = {
  items: ChatItem[];
  peerName: string;
  hasMore: boolean;
  loadingOlder: boolean;
  onLoadOlder: () => void;
  onAtBottomChange: (atBottom: boolean) => void;
  handlers: MessageHandlers;
  /** The message whose text is being edited in place. */
  editingId: number | null;
  /** A message to bring into view and mark for a moment (the original of a reply). */
  highlightId: number | null;
  typing: boolean;
};

const BOTTOM_SLACK = 48;
const LOAD_MORE_PX = 400;

/**
 * The scrolling message log. It sticks to the bottom unless the reader scrolled up (then a
 * "new messages" button appears), keeps its place when older pages load above, and asks for
 * older pages when the reader nears the top.
 */
export function MessageList(props: Props) {
  const { items, peerName, hasMore, loadingOlder, onLoadOlder, onAtBottomChange, handlers, editingId, highlightId, typing } = props;
  const now = useNow(60_000);
  const sections = useMemo(() => groupItems(items, now), [items, now]);
  const scroller = useRef<HTMLDivElement>(null);
  const atBottomRef = useRef(true);
  const fromBottom = useRef(0);
  const firstKey = useRef<string | null>(null);
  const lastKey = useRef<string | null>(null);
  const [atBottom, setAtBottom] = useState(true);
  const [unseen, setUnseen] = useState(0);

  const updateAtBottom = useCallback(
    (value: boolean) => {
      if (atBottomRef.current === value) return;
      atBottomRef.current = value;
      setAtBottom(value);
      onAtBottomChange(value);
      if (value) setUnseen(0);
    },
    [onAtBottomChange],
  );

  const scrollToBottom = useCallback((smooth = false) => {
    const el = scroller.current;
    if (!el) return;
    el.scrollTo({ top: el.scrollHeight, behavior: smooth ? "smooth" : "auto" });
  }, []);

  // After each change of the rows: stick to the bottom, keep the place on a prepend, or count
  // what arrived below the reader.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const first = items[0]?.key ?? null;
    const last = items[items.length - 1]?.key ?? null;
    const prepended = firstKey.current !== null && first !== firstKey.current && last === lastKey.current;
    const appended = last !== lastKey.current && lastKey.current !== null;
    const newest = items[items.length - 1];
    if (firstKey.current === null || atBottomRef.current || (appended && newest?.own && newest.seq === null)) {
      el.scrollTop = el.scrollHeight;
      if (!atBottomRef.current) updateAtBottom(true);
    } else if (prepended) {
      el.scrollTop = el.scrollHeight - fromBottom.current;
    } else if (appended) {
      const prevIndex = items.findIndex((it) => it.key === lastKey.current);
      const added = items.slice(prevIndex + 1).filter((it) => !it.own).length;
      if (added > 0) setUnseen((n) => n + added);
    }
    firstKey.current = first;
    lastKey.current = last;
    fromBottom.current = el.scrollHeight - el.scrollTop;
  }, [items, updateAtBottom]);

  // The original of a reply, shown in the middle of the view.
  useEffect(() => {
    if (highlightId === null) return;
    const el = scroller.current?.querySelector<HTMLElement>(`.msg[data-id="${highlightId}"]`);
    el?.scrollIntoView({ block: "center", behavior: "smooth" });
  }, [highlightId]);

  // The typing line appearing should not push the last message out of view.
  useLayoutEffect(() => {
    if (atBottomRef.current) scrollToBottom();
  }, [typing, scrollToBottom]);

  // Stay at the bottom when the viewport changes (the composer grows, the phone keyboard opens).
  useEffect(() => {
    const el = scroller.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => {
      if (atBottomRef.current) el.scrollTop = el.scrollHeight;
    });
    ro.observe(el);
    const inner = el.firstElementChild;
    if (inner) ro.observe(inner);
    return () => ro.disconnect();
  }, []);

  // Photos have their box before they load, so a load moves nothing; should one still change
  // the height (a photo whose size the server did not know), a reader at the bottom stays there.
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const onLoad = (e: Event) => {
      if (e.target instanceof HTMLImageElement && atBottomRef.current) el.scrollTop = el.scrollHeight;
    };
    el.addEventListener("load", onLoad, true);
    return () => el.removeEventListener("load", onLoad, true);
  }, []);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    fromBottom.current = el.scrollHeight - el.scrollTop;
    updateAtBottom(el.scrollHeight - el.scrollTop - el.clientHeight <= BOTTOM_SLACK);
    if (el.scrollTop < LOAD_MORE_PX && hasMore && !loadingOlder) onLoadOlder();
  };

  // A first page shorter than the viewport has no scrollbar to pull on: load on until it fills.
  useEffect(() => {
    const el = scroller.current;
    if (el && hasMore && !loadingOlder && el.scrollHeight <= el.clientHeight + LOAD_MORE_PX) onLoadOlder();
  }, [items, hasMore, loadingOlder, onLoadOlder]);

  return (
    <div className="msglist">
      {/* Focusable, so the history scrolls from the keyboard even when it holds no link. */}
      <div
        className="msglist__scroller"
        ref={scroller}
        onScroll={onScroll}
        tabIndex={0}
        role="region"
        aria-label="Message history"
      >
        <div className="msglist__inner">
          {hasMore || loadingOlder ? (
            <div className="msglist__older">
              {loadingOlder ? <Spinner size="sm" label="Loading earlier messages" /> : null}
            </div>
          ) : items.length > 0 ? (
            <div className="msglist__start">
              This is the beginning of your conversation with <bdi>{peerName}</bdi>.
            </div>
          ) : null}
          <div role="log" aria-label={`Messages with ${peerName}`} aria-live="polite" aria-relevant="additions">
            {sections.map((day) => (
              <section key={day.key} className="msgday" aria-label={day.label}>
                <div className="msgday__label" role="separator">
                  <span>{day.label}</span>
                </div>
                {day.groups.map((g) => (
                  <div key={g.key} className={`msggroup ${g.own ? "is-own" : "is-peer"}`}>
                    {g.items.map((it, idx) => (
                      <Bubble
                        key={it.key}
                        item={it}
                        position={g.items.length === 1 ? "single" : idx === 0 ? "first" : idx === g.items.length - 1 ? "last" : "middle"}
                        editing={it.id !== null && it.id === editingId}
                        highlighted={it.id !== null && it.id === highlightId}
                        handlers={handlers}
                      />
                    ))}
                  </div>
                ))}
              </section>
            ))}
          </div>
          <div className={`typing ${typing ? "is-visible" : ""}`} aria-live="polite">
            {typing ? (
              <>
                <span className="typing__dots" aria-hidden="true">
                  <span />
                  <span />
                  <span />
                </span>
                <span className="typing__text">
                  <bdi>{peerName}</bdi> is typing…
                </span>
              </>
            ) : null}
          </div>
        </div>
      </div>
      {!atBottom ? (
        <button
          type="button"
          className={`jump ${unseen > 0 ? "has-new" : ""}`}
          onClick={() => scrollToBottom(true)}
          aria-label={unseen > 0 ? `${unseen} new ${unseen === 1 ? "message" : "messages"}, jump to latest` : "Jump to latest message"}
        >
          {unseen > 0 ? <span className="jump__count">{unseen > 99 ? "99+" : unseen} new</span> : null}
          <Icon name="down" />
        </button>
      ) : null}
    </div>
  );
}
