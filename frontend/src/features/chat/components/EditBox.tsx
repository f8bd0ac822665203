import { useEffect, useRef, useState, type KeyboardEvent } from "react";
import { ApiError } from "../../../lib/api-client";
import { useAutoGrow } from "../../../lib/hooks";
import { MAX_BODY } from "./Composer";

type Props = {
  initial: string;
  onSave: (body: string) => Promise<void>;
  onCancel: () => void;
};

/**
 * A message's text being edited, in its bubble: Enter saves, Shift+Enter breaks the line, Escape
 * cancels. The server's refusal (say, past the edit window) shows under it, in its words.
 */
export function EditBox({ initial, onSave, onCancel }: Props) {
  const [text, setText] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.focus({ preventScroll: true });
    el.setSelectionRange(el.value.length, el.value.length);
    el.scrollIntoView({ block: "nearest" });
  }, []);

  useAutoGrow(ref, text, 240);

  const trimmed = text.trim();
  const tooLong = trimmed.length > MAX_BODY;

  const save = async () => {
    if (busy || !trimmed || tooLong) return;
    if (trimmed === initial.trim()) {
      onCancel();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSave(trimmed);
    } catch (err) {
      setBusy(false);
      setError(err instanceof ApiError ? err.message : "Couldn't save the change. Please try again.");
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      onCancel();
    } else if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void save();
    }
  };

  return (
    <div className="msg-edit">
      <textarea
        ref={ref}
        className="msg-edit__input"
        value={text}
        rows={1}
        dir="auto"
        aria-label="Edit message"
        aria-describedby="msg-edit-help"
        aria-invalid={tooLong || error !== null || undefined}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        enterKeyHint="done"
      />
      {error ? (
        <p className="msg-edit__error" role="alert">
          {error}
        </p>
      ) : null}
      <div className="msg-edit__bar">
        <span id="msg-edit-help" className="msg-edit__help">
          Enter saves · Esc cancels
        </span>
        <button type="button" className="msg-edit__btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="msg-edit__btn is-primary" onClick={() => void save()} disabled={busy || !trimmed || tooLong}>
          Save
        </button>
      </div>
    </div>
  );
}
