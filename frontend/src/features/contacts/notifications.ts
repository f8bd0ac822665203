// Desktop notifications for messages in rooms that are not in view, once the user allowed them.
import type { Message } from "../../api/types";
import { messagePreview } from "../../lib/attachments";
import { navigate } from "../../lib/router";

export function notificationsSupported(): boolean {
  return typeof window !== "undefined" && "Notification" in window;
}

export function notificationPermission(): NotificationPermission | "unsupported" {
  return notificationsSupported() ? Notification.permission : "unsupported";
}

export async function requestNotifications(): Promise<NotificationPermission | "unsupported"> {
  if (!notificationsSupported()) return "unsupported";
  return Notification.requestPermission();
}

export function notifyMessage(senderName: string, m: Message): void {
  if (notificationPermission() !== "granted") return;
  try {
    const text = messagePreview(m);
    const body = text.length > 140 ? `${text.slice(0, 139)}…` : text;
    const n = new Notification(senderName, { body, tag: `room-${m.room_id}`, icon: "/favicon.svg" });
    n.onclick = () => {
      window.focus();
      navigate(`/chat/${m.room_id}`);
      n.close();
    };
  } catch {
    // some browsers only allow notifications from a service worker
  }
}
