// /settings: the account settings page (profile, password, sessions, deleting the account).
import { SettingsScreen } from "../../features/settings";

export function SettingsRoute() {
  return <SettingsScreen />;
}
