import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import type { User } from "../../../api/types";
import { Avatar } from "../../../components/Avatar";
import { Button } from "../../../components/Button";
import { Icon } from "../../../components/Icon";
import { Spinner } from "../../../components/Spinner";
import { Link } from "../../../lib/router";
import { attachmentSummary } from "../../../lib/attachments";
import { useConnectionState, useSocket } from "../../../lib/services";
import { isDeletedUser } from "../../../lib/users";
import { useConversation } from "../hooks/useConversation";
import { useUploads } from "../hooks/useUploads";
import { buildItems, excerpt, lastOwnEditable, lastSeq, type ChatItem } from "../model";
import type { MessageHandlers } from "./Bubble";
import { Composer, type ReplyDraft } from "./Composer";
import { DeleteDialog } from "./DeleteDialog";
import { MessageList } from "./MessageList";

type Props = {
  roomId: number;
  me: User;
  /** What the contacts list knows about the other person, shown before the room loads. */
  peerHint: { user: User; online: boolean } | null;
  onBack: () => void;
};

/** Whether a drag carries files (not text or a link dragged from the page). */
function hasFiles(e: DragEvent): boolean {
  return Array.from(e.dataTransfer.types).includes("Files");
}

/** The files of a drop; folders (which a browser hands over as empty files) are counted apart. */
export function droppedFiles(data: DataTransfer): { files: File[]; folders: number } {
  const items = Array.from(data.items ?? []).filter((it) => it.kind === "file");
  if (items.length === 0) return { files: Array.from(data.files), folders: 0 };
  const files: File[] = [];
  let folders = 0;
  for (const it of items) {
    const entry = typeof it.webkitGetAsEntry === "function" ? it.webkitGetAsEntry() : null;
    if (entry?.isDirectory) {
      folders += 1;
      continue;
    }
    const f = it.getAsFile();
    if (f) files.push(f);
  }
  return { files, folders };
}

function usePageVisible(): boolean {
  const [visible, setVisible] = useState(() => document.visibilityState === "visible");
  useEffect(() => {
    const on = () => setVisible(document.visibilityState === "visible");
    document.addEventListener("visibilitychange", on);
    window.addEventListener("focus", on);
    return () => {
      document.removeEventListener("visibilitychange", on);
      window.removeEventListener("focus", on);
    };
  }, []);
  return visible;
}

/** A conversation: header with presence, the message log, and the composer. */
export function Conversation({ roomId, me, peerHint, onBack }: Props) {
  const socket = useSocket();
  const conv = useConversation(roomId, me, peerHint?.online ?? null);
  const [atBottom, setAtBottom] = useState(true);
  const visible = usePageVisible();
  const peer = conv.peer ?? peerHint?.user ?? null;
  const peerName = peer?.display_name ?? "…";
  // Without a live connection, presence is unknown rather than stale.
  const connected = useConnectionState().status === "open";
  const peerDeleted = isDeletedUser(peer);
  const online = connected && !peerDeleted ? (conv.peerOnline ?? peerHint?.online ?? null) : null;

  const items = useMemo(
    () => buildItems(conv.messages, conv.pending, me.id, conv.peerReadUpTo),
    [conv.messages, conv.pending, me.id, conv.peerReadUpTo],
  );

  // What is on screen at the bottom of a visible page counts as read.
  const newest = lastSeq(conv.messages);
  useEffect(() => {
    if (conv.status === "ready" && visible && atBottom && newest > socket.readMarker(roomId)) socket.markRead(roomId, newest);
  }, [conv.status, visible, atBottom, newest, roomId, socket]);

  const onTyping = useCallback(() => socket.typing(roomId), [socket, roomId]);

  // Replying, editing, deleting, reacting and showing a reply's original.
  const composerRef = useRef<HTMLTextAreaElement>(null);
  const [reply, setReply] = useState<ReplyDraft | null>(null);
  const [editingId, setEditingId] = useState<number | null>(null);
  const [deleting, setDeleting] = useState<ChatItem | null>(null);
  const [jumpTo, setJumpTo] = useState<number | null>(null);
  const [highlightId, setHighlightId] = useState<number | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const members = conv.room?.members;
  const nameOf = useCallback(
    (userId: number) =>
      userId === me.id ? "You" : (members?.find((u) => u.id === userId)?.display_name ?? (peer?.id === userId ? peer.display_name : "Someone")),
    [me.id, members, peer],
  );
  const { edit, react, send: sendMessage } = conv;

  const endEdit = useCallback(() => {
    setEditingId(null);
    if (window.matchMedia("(min-width: 768px)").matches) composerRef.current?.focus();
  }, []);

  const handlers = useMemo<MessageHandlers>(
    () => ({
      nameOf,
      onRetry: conv.retry,
      onDiscard: conv.discard,
      onReply: (it) => {
        if (it.id === null) return;
        setEditingId(null);
        setReply({ id: it.id, name: it.own ? "yourself" : nameOf(it.senderId), excerpt: excerpt(it.body.trim() ? it.body : attachmentSummary(it.attachments)) });
      },
      onStartEdit: (id) => setEditingId(id),
      onCancelEdit: endEdit,
      onSaveEdit: async (id, body) => {
        await edit(id, body);
        endEdit();
      },
      onDelete: (it) => setDeleting(it),
      onReact: (id, emoji, on) => {
        react(id, emoji, on).catch((err: unknown) => setNotice(err instanceof Error ? err.message : "Couldn't react."));
      },
      onJumpTo: (id) => {
        setHighlightId(null);
        setJumpTo(id);
      },
    }),
    [nameOf, conv.retry, conv.discard, edit, react, endEdit],
  );

  // Showing a reply's original: it may be older than the history loaded, so pages are loaded
  // until it is there (or the history ends).
  const { messages, hasMore, loadingOlder, loadOlder } = conv;
  useEffect(() => {
    if (jumpTo === null) return;
    if (messages.some((m) => m.id === jumpTo)) {
      setHighlightId(jumpTo);
      setJumpTo(null);
    } else if (hasMore) {
      if (!loadingOlder) loadOlder();
    } else {
      setJumpTo(null);
      setNotice("The original message is no longer in this conversation.");
    }
  }, [jumpTo, messages, hasMore, loadingOlder, loadOlder]);

  useEffect(() => {
    if (highlightId === null) return;
    const t = window.setTimeout(() => setHighlightId(null), 2000);
    return () => window.clearTimeout(t);
  }, [highlightId]);

  useEffect(() => {
    if (notice === null) return;
    const t = window.setTimeout(() => setNotice(null), 5000);
    return () => window.clearTimeout(t);
  }, [notice]);

  // The message being answered was deleted meanwhile: there is nothing to answer any more.
  useEffect(() => {
    if (reply && messages.some((m) => m.id === reply.id && m.deleted_at != null)) {
      setReply(null);
      setNotice("The message you were replying to was deleted.");
    }
  }, [reply, messages]);

  // Files attached to the message being written: they upload as soon as they are added.
  const uploads = useUploads();
  const { ready: readyUploads, clear: clearUploads, add: addUploads } = uploads;
  const onSend = useCallback(
    (body: string) => {
      sendMessage(body, reply?.id, readyUploads());
      clearUploads();
      setReply(null);
    },
    [sendMessage, reply, readyUploads, clearUploads],
  );

  // Files dragged over the conversation: a drop zone over all of it says where they go.
  const [dragging, setDragging] = useState(false);
  const dragDepth = useRef(0);
  // A file dropped beside the conversation (the contacts list) must not make the browser leave
  // the app to show it.
  useEffect(() => {
    const guard = (e: globalThis.DragEvent) => {
      if (e.defaultPrevented || !e.dataTransfer || !Array.from(e.dataTransfer.types).includes("Files")) return;
      e.preventDefault();
      if (e.type === "dragover") e.dataTransfer.dropEffect = "none";
    };
    window.addEventListener("dragover", guard);
    window.addEventListener("drop", guard);
    return () => {
      window.removeEventListener("dragover", guard);
      window.removeEventListener("drop", guard);
    };
  }, []);
  const onDragEnter = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth.current += 1;
    setDragging(true);
  };
  const onDragOver = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  };
  const onDragLeave = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    dragDepth.current = Math.max(0, dragDepth.current - 1);
    if (dragDepth.current === 0) setDragging(false);
  };
  const onDrop = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth.current = 0;
    setDragging(false);
    const { files, folders } = droppedFiles(e.dataTransfer);
    if (files.length > 0 || folders > 0) addUploads(files, folders);
    composerRef.current?.focus();
  };

  const onEditLast = useCallback(() => {
    const last = lastOwnEditable(messages, me.id);
    if (!last) return false;
    setEditingId(last.id);
    return true;
  }, [messages, me.id]);

  if (conv.status === "not-found") {
    return (
      <div className="conv conv--empty">
        <div className="placeholder" role="alert">
          <h2>Conversation not found</h2>
          <p>It doesn't exist, or you're not part of it.</p>
          <Link to="/" className="btn btn--subtle">
            Back to your chats
          </Link>
        </div>
      </div>
    );
  }

  const status = peerDeleted ? "account deleted" : conv.peerTyping ? "typing…" : online === null ? "" : online ? "online" : "offline";

  return (
    <section
      className={`conv ${dragging ? "is-dragging" : ""}`}
      aria-label={`Conversation with ${peerName}`}
      onDragEnter={onDragEnter}
      onDragOver={onDragOver}
      onDragLeave={onDragLeave}
      onDrop={onDrop}
    >
      <header className="conv__header">
        <Button variant="ghost" icon className="conv__back" onClick={onBack} aria-label="Back to conversations">
          <Icon name="back" />
        </Button>
        {peer ? <Avatar name={peer.display_name} id={peer.id} online={online ?? undefined} /> : <span className="avatar avatar--md skeleton" />}
        <div className="conv__who">
          <h2 className="conv__name" dir="auto">
            {peerName}
          </h2>
          <p className={`conv__status ${conv.peerTyping ? "is-typing" : online ? "is-online" : ""}`} aria-live="polite">
            {peer && !peerDeleted ? <span className="conv__username">@{peer.username}</span> : null}
            {status ? <span>{peer && !peerDeleted ? " · " : ""}{status}</span> : null}
          </p>
        </div>
      </header>

      {conv.status === "loading" ? (
        <div className="conv__loading">
          <Spinner label="Loading messages" />
        </div>
      ) : conv.status === "error" ? (
        <div className="conv__loading" role="alert">
          <p>Couldn't load this conversation.</p>
          <Button variant="subtle" onClick={conv.reload}>
            <Icon name="retry" /> Try again
          </Button>
        </div>
      ) : items.length === 0 ? (
        <div className="conv__hello">
          {peer ? <Avatar name={peer.display_name} id={peer.id} size="lg" /> : null}
          <h3>
            Say hello to <bdi>{peerName}</bdi>
          </h3>
          <p>This is the start of your conversation. Messages are delivered live, even when they were offline.</p>
        </div>
      ) : (
        <MessageList
          items={items}
          peerName={peerName}
          hasMore={conv.hasMore}
          loadingOlder={conv.loadingOlder}
          onLoadOlder={conv.loadOlder}
          onAtBottomChange={setAtBottom}
          handlers={handlers}
          editingId={editingId}
          highlightId={highlightId}
          typing={conv.peerTyping}
        />
      )}
      {conv.status === "ready" && items.length === 0 && conv.peerTyping ? (
        <div className="typing is-visible typing--standalone">
          <span className="typing__text">
            <bdi>{peerName}</bdi> is typing…
          </span>
        </div>
      ) : null}

      {notice ? (
        <div className="conv__notice" role="status">
          {notice}
        </div>
      ) : null}
      <Composer
        key={roomId}
        roomId={roomId}
        peerName={peerName}
        onSend={onSend}
        onTyping={onTyping}
        reply={reply}
        onCancelReply={() => setReply(null)}
        onEditLast={onEditLast}
        inputRef={composerRef}
        uploads={uploads}
      />
      {dragging ? (
        <div className="dropzone" aria-hidden="true">
          <div className="dropzone__inner">
            <Icon name="upload" />
            <strong>
              Drop files to send to <bdi>{peerName}</bdi>
            </strong>
            <span>Photos and files, up to 10 in one message</span>
          </div>
        </div>
      ) : null}
      {deleting && deleting.id !== null ? (
        <DeleteDialog
          onCancel={() => setDeleting(null)}
          onConfirm={async () => {
            if (deleting.id !== null) await conv.remove(deleting.id);
            if (reply?.id === deleting.id) setReply(null);
            setDeleting(null);
          }}
        />
      ) : null}
    </section>
  );
}
