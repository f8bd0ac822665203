export { ContactList } from "./components/ContactList";
export { UserSearch } from "./components/UserSearch";
export { NotificationPrompt } from "./components/NotificationPrompt";
export { useContacts, type ContactsApi } from "./hooks/useContacts";
