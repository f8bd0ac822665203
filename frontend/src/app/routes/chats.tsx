// The main screen: the contacts sidebar and the open conversation (one or the other on a phone).
import { useEffect, useState } from "react";
import { Avatar } from "../../components/Avatar";
import { Button } from "../../components/Button";
import { ConnectionBanner } from "../../components/ConnectionBanner";
import { Icon } from "../../components/Icon";
import { useIsAdmin } from "../../features/admin";
import { useLogout } from "../../features/auth";
import { Conversation } from "../../features/chat";
import { ContactList, NotificationPrompt, UserSearch, useContacts } from "../../features/contacts";
import { documentTitle } from "../../lib/format";
import { navigate } from "../../lib/router";
import { useSession } from "../../lib/services";

export function ChatsRoute({ roomId }: { roomId: number | null }) {
  const session = useSession();
  const contacts = useContacts(roomId);
  const { logout, busy: loggingOut } = useLogout();
  const [findQuery, setFindQuery] = useState<string | null>(null);
  const isAdmin = useIsAdmin();
  const me = session?.user;

  useEffect(() => {
    document.title = documentTitle(contacts.unread);
  }, [contacts.unread]);

  if (!me) return null;
  const active = roomId !== null ? contacts.contacts.find((c) => c.room_id === roomId) : undefined;

  return (
    <div className={`chats ${roomId !== null ? "has-room" : ""}`}>
      <ConnectionBanner />
      <div className="chats__body">
        <aside className="sidebar" aria-label="Conversations">
          <header className="sidebar__header">
            <div className="sidebar__me">
              <Avatar name={me.display_name} id={me.id} size="sm" />
              <div className="sidebar__me-names">
                <span className="sidebar__me-name" dir="auto">
                  {me.display_name}
                </span>
                <span className="sidebar__me-username">@{me.username}</span>
              </div>
            </div>
            <div className="sidebar__actions">
              {isAdmin ? (
                <Button variant="ghost" icon onClick={() => navigate("/admin")} aria-label="Administration" title="Administration">
                  <Icon name="shield" />
                </Button>
              ) : null}
              <Button variant="ghost" icon onClick={() => setFindQuery("")} aria-label="Find people" title="Find people">
                <Icon name="userPlus" />
              </Button>
              <Button variant="ghost" icon onClick={() => navigate("/settings")} aria-label="Settings" title="Settings">
                <Icon name="settings" />
              </Button>
              <Button
                variant="ghost"
                icon
                busy={loggingOut}
                onClick={() => void logout()}
                aria-label="Log out"
                title="Log out"
              >
                {loggingOut ? null : <Icon name="logout" />}
              </Button>
            </div>
          </header>
          <NotificationPrompt />
          <ContactList
            contacts={contacts.contacts}
            status={contacts.status}
            meId={me.id}
            activeRoomId={roomId}
            typingRooms={contacts.typingRooms}
            onReload={contacts.reload}
            onFindPeople={(q) => setFindQuery(q)}
          />
        </aside>
        <main className="main-pane">
          {roomId !== null ? (
            <Conversation
              key={roomId}
              roomId={roomId}
              me={me}
              peerHint={active ? { user: active.user, online: active.online } : null}
              onBack={() => navigate("/")}
            />
          ) : (
            <div className="placeholder placeholder--pane">
              <div className="empty-illustration" aria-hidden="true">
                <Icon name="chat" />
              </div>
              {contacts.contacts.length > 0 || contacts.status !== "ready" ? (
                <>
                  <h2>Pick a conversation</h2>
                  <p>Choose someone on the left, or find someone new to talk to.</p>
                  <Button variant="subtle" onClick={() => setFindQuery("")}>
                    <Icon name="userPlus" /> Find people
                  </Button>
                </>
              ) : (
                <>
                  <h2>
                    Welcome, <bdi>{me.display_name.split(" ")[0]}</bdi>!
                  </h2>
                  <p>Your conversations will show up here. Here's how to start:</p>
                  <ol className="steps-list">
                    <li>
                      <span>
                        <strong>Find people</strong> by their name or username.
                      </span>
                    </li>
                    <li>
                      <span>
                        <strong>Add them</strong> and a private conversation opens.
                      </span>
                    </li>
                    <li>
                      <span>
                        <strong>Say hello.</strong> Messages arrive live, or wait for them while they're offline.
                      </span>
                    </li>
                  </ol>
                </>
              )}
            </div>
          )}
        </main>
      </div>
      {findQuery !== null ? (
        <UserSearch
          initialQuery={findQuery}
          contacts={contacts.contacts}
          onClose={() => setFindQuery(null)}
          onAdded={contacts.added}
          onOpen={(id) => {
            setFindQuery(null);
            navigate(`/chat/${id}`);
          }}
        />
      ) : null}
    </div>
  );
}
