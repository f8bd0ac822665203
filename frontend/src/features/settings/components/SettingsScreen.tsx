import { useEffect } from "react";
import { Avatar } from "../../../components/Avatar";
import { Icon } from "../../../components/Icon";
import { Link } from "../../../lib/router";
import { useSession } from "../../../lib/services";
import { useSessions } from "../hooks/useSessions";
import { DeleteAccountSection } from "./DeleteAccountSection";
import { PasswordSection } from "./PasswordSection";
import { ProfileSection } from "./ProfileSection";
import { SessionsSection } from "./SessionsSection";

/** The account settings page: profile, password, signed-in devices, and deleting the account. */
export function SettingsScreen() {
  const me = useSession()?.user;
  const sessions = useSessions();
  useEffect(() => {
    document.title = "Settings · Let's Chat";
  }, []);
  if (!me) return null;
  return (
    <div className="settings">
      <header className="settings__header">
        <Link to="/" className="btn btn--ghost btn--icon settings__back" aria-label="Back to chats" title="Back to chats">
          <Icon name="back" />
        </Link>
        <h1>Settings</h1>
        <div className="settings__me" aria-hidden="true">
          <Avatar name={me.display_name} id={me.id} size="sm" />
        </div>
      </header>
      <main className="settings__body">
        <div className="settings__col">
          <ProfileSection me={me} />
          <PasswordSection onChanged={sessions.reload} />
        </div>
        <div className="settings__col">
          <SessionsSection sessions={sessions} />
          <DeleteAccountSection />
        </div>
      </main>
    </div>
  );
}
