export { Conversation } from "./components/Conversation";
