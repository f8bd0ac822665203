import { useEffect, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { Icon } from "../../../components/Icon";

export const MAX_BODY = 4000;
const TYPING_EVERY_MS = 3000;

type Props = { peerName: string; onSend: (body: string) => void; onTyping: () => void; roomId: number };

const draftKey = (roomId: number) => `letschat.draft.${roomId}`;

/** The message box: Enter sends, Shift+Enter breaks the line; grows with its text; keeps a draft per room. */
export function Composer({ peerName, onSend, onTyping, roomId }: Props) {
  const [text, setText] = useState(() => sessionStorage.getItem(draftKey(roomId)) ?? "");
  const ref = useRef<HTMLTextAreaElement>(null);
  const lastTyping = useRef(0);

  useEffect(() => {
    // On a phone the keyboard would cover the conversation just opened.
    if (window.matchMedia("(min-width: 768px)").matches) ref.current?.focus();
  }, []);

  useEffect(() => {
    if (text) sessionStorage.setItem(draftKey(roomId), text);
    else sessionStorage.removeItem(draftKey(roomId));
  }, [text, roomId]);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
  }, [text]);

  const trimmed = text.trim();
  const tooLong = trimmed.length > MAX_BODY;

  const send = () => {
    if (!trimmed || tooLong) return;
    onSend(trimmed);
    setText("");
    lastTyping.current = 0;
    ref.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  };

  const onChange = (value: string) => {
    setText(value);
    const now = Date.now();
    if (value.trim() && now - lastTyping.current > TYPING_EVERY_MS) {
      lastTyping.current = now;
      onTyping();
    }
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    send();
  };

  return (
    <form className="composer" onSubmit={onSubmit}>
      <div className={`composer__box ${tooLong ? "is-invalid" : ""}`}>
        <textarea
          ref={ref}
          rows={1}
          value={text}
          placeholder={`Message ${peerName}`}
          aria-label={`Message ${peerName}`}
          aria-describedby="composer-help"
          aria-invalid={tooLong || undefined}
          onChange={(e) => onChange(e.target.value)}
          onKeyDown={onKeyDown}
          enterKeyHint="send"
        />
        {trimmed.length > MAX_BODY - 500 ? (
          <span className={`composer__count ${tooLong ? "is-over" : ""}`} aria-live="polite">
            {trimmed.length}/{MAX_BODY}
          </span>
        ) : null}
      </div>
      <span id="composer-help" className="sr-only">
        Enter sends, Shift+Enter adds a new line.
      </span>
      <button type="submit" className="composer__send" disabled={!trimmed || tooLong} aria-label="Send message">
        <Icon name="send" />
      </button>
    </form>
  );
}
