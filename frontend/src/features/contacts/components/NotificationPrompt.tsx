import { useState } from "react";
import { Icon } from "../../../components/Icon";
import { notificationPermission, requestNotifications } from "../notifications";

const DISMISS_KEY = "letschat.notifications.dismissed";

/** Offers desktop notifications once, from a click (browsers only allow asking from a gesture). */
export function NotificationPrompt() {
  const [perm, setPerm] = useState(notificationPermission);
  const [dismissed, setDismissed] = useState(() => localStorage.getItem(DISMISS_KEY) === "1");
  if (perm !== "default" || dismissed) return null;
  return (
    <div className="notif-prompt">
      <Icon name="bell" />
      <span>Get desktop notifications</span>
      <button type="button" className="link-button" onClick={() => void requestNotifications().then(setPerm)}>
        Turn on
      </button>
      <button
        type="button"
        className="notif-prompt__close"
        aria-label="Don't ask again"
        onClick={() => {
          localStorage.setItem(DISMISS_KEY, "1");
          setDismissed(true);
        }}
      >
        <Icon name="close" />
      </button>
    </div>
  );
}
