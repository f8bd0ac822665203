import { useEffect, useRef, useState, type ClipboardEvent, type FormEvent, type KeyboardEvent, type RefObject } from "react";
import { Icon } from "../../../components/Icon";
import { useAutoGrow } from "../../../lib/hooks";
import { pastedName, type Uploads } from "../hooks/useUploads";
import { AttachmentTray } from "./AttachmentTray";

export const MAX_BODY = 4000;
const TYPING_EVERY_MS = 3000;

/** The message being answered, as the bar over the box shows it. */
export type ReplyDraft = { id: number; name: string; excerpt: string };

type Props = {
  peerName: string;
  onSend: (body: string) => void;
  onTyping: () => void;
  roomId: number;
  reply: ReplyDraft | null;
  onCancelReply: () => void;
  /** Up arrow in the empty box: edit our last message. True when there was one to edit. */
  onEditLast: () => boolean;
  inputRef: RefObject<HTMLTextAreaElement | null>;
  /** The files attached to the message being written. */
  uploads: Uploads;
};

const draftKey = (roomId: number) => `letschat.draft.${roomId}`;

/** The files of a paste, renamed when the browser calls every screenshot "image.png". */
export function pastedFiles(data: Pick<DataTransfer, "files" | "types">, now = new Date()): File[] {
  // Text copied with a picture of itself (a spreadsheet's cells, a web page) is pasted as text.
  if (data.types.includes("text/plain")) return [];
  return Array.from(data.files, (f) => {
    const name = pastedName(f, now);
    return name === f.name ? f : new File([f], name, { type: f.type, lastModified: f.lastModified });
  });
}

/**
 * The message box: Enter sends, Shift+Enter breaks the line, Up in an empty box edits our last
 * message; grows with its text; keeps a draft per room. A reply shows what it answers above it.
 * Files come from the paperclip (the file picker), a paste, or a drop on the conversation; they
 * upload at once, and the message goes when they all have.
 */
export function Composer({ peerName, onSend, onTyping, roomId, reply, onCancelReply, onEditLast, inputRef: ref, uploads }: Props) {
  const [text, setText] = useState(() => sessionStorage.getItem(draftKey(roomId)) ?? "");
  const lastTyping = useRef(0);
  const picker = useRef<HTMLInputElement>(null);

  // Choosing "Reply" puts the cursor here.
  const replyId = reply?.id ?? null;
  useEffect(() => {
    if (replyId !== null) ref.current?.focus();
  }, [replyId, ref]);

  useEffect(() => {
    // On a phone the keyboard would cover the conversation just opened.
    if (window.matchMedia("(min-width: 768px)").matches) ref.current?.focus();
  }, []);

  useEffect(() => {
    if (text) sessionStorage.setItem(draftKey(roomId), text);
    else sessionStorage.removeItem(draftKey(roomId));
  }, [text, roomId]);

  useAutoGrow(ref, text, 160);

  const trimmed = text.trim();
  const tooLong = trimmed.length > MAX_BODY;
  const sendable = uploads.canSend(trimmed) && !tooLong;
  const waiting = uploads.waitingFor;

  const send = () => {
    if (!sendable) return;
    onSend(trimmed);
    setText("");
    lastTyping.current = 0;
    ref.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === "ArrowUp" && text === "" && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      if (onEditLast()) e.preventDefault();
    } else if (e.key === "Escape" && reply) {
      e.preventDefault();
      onCancelReply();
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

  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    const files = pastedFiles(e.clipboardData);
    if (files.length === 0) return;
    e.preventDefault();
    uploads.add(files);
  };

  return (
    <>
      <AttachmentTray uploads={uploads} />
      {reply ? (
        <div className="composer__reply">
          <Icon name="reply" className="composer__reply-icon" />
          <div className="composer__reply-body">
            <span className="composer__reply-name">
              Replying to <bdi>{reply.name}</bdi>
            </span>
            <span className="composer__reply-text" dir="auto">
              {reply.excerpt}
            </span>
          </div>
          <button type="button" className="composer__reply-close" onClick={onCancelReply} aria-label="Cancel reply">
            <Icon name="close" />
          </button>
        </div>
      ) : null}
      <form className="composer" onSubmit={onSubmit}>
        <button
          type="button"
          className="composer__attach"
          onClick={() => picker.current?.click()}
          aria-label="Attach files"
          title="Attach files (or drop them here, or paste a picture)"
        >
          <Icon name="paperclip" />
        </button>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          tabIndex={-1}
          aria-hidden="true"
          onChange={(e) => {
            const files = Array.from(e.target.files ?? []);
            // The same file can be picked again (after removing it).
            e.target.value = "";
            if (files.length > 0) uploads.add(files);
            ref.current?.focus();
          }}
        />
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
            onPaste={onPaste}
            enterKeyHint="send"
          />
          {trimmed.length > MAX_BODY - 500 ? (
            <span className={`composer__count ${tooLong ? "is-over" : ""}`} aria-live="polite">
              {trimmed.length}/{MAX_BODY}
            </span>
          ) : null}
        </div>
        <span id="composer-help" className="sr-only">
          Enter sends, Shift+Enter adds a new line, Up arrow in an empty box edits your last message. You can paste a picture to attach it.
        </span>
        <button
          type="submit"
          className="composer__send"
          disabled={!sendable}
          aria-label={waiting ? `Send message (${waiting.toLowerCase()})` : "Send message"}
          title={waiting ?? undefined}
        >
          <Icon name="send" />
        </button>
      </form>
    </>
  );
}
