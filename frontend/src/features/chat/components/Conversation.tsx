import { useCallback, useEffect, useMemo, useState } from "react";
import type { User } from "../../../api/types";
import { Avatar } from "../../../components/Avatar";
import { Button } from "../../../components/Button";
import { Icon } from "../../../components/Icon";
import { Spinner } from "../../../components/Spinner";
import { Link } from "../../../lib/router";
import { useConnectionState, useSocket } from "../../../lib/services";
import { useConversation } from "../hooks/useConversation";
import { buildItems, lastSeq } from "../model";
import { Composer } from "./Composer";
import { MessageList } from "./MessageList";

type Props = {
  roomId: number;
  me: User;
  /** What the contacts list knows about the other person, shown before the room loads. */
  peerHint: { user: User; online: boolean } | null;
  onBack: () => void;
};

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
  const online = connected ? (conv.peerOnline ?? peerHint?.online ?? null) : null;

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

  const status = conv.peerTyping ? "typing…" : online === null ? "" : online ? "online" : "offline";

  return (
    <section className="conv" aria-label={`Conversation with ${peerName}`}>
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
            {peer ? <span className="conv__username">@{peer.username}</span> : null}
            {status ? <span> · {status}</span> : null}
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
          onRetry={conv.retry}
          onDiscard={conv.discard}
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

      <Composer key={roomId} roomId={roomId} peerName={peerName} onSend={conv.send} onTyping={onTyping} />
    </section>
  );
}
