export { AdminScreen, type AdminView } from "./components/AdminScreen";
export { useIsAdmin } from "./hooks/useIsAdmin";
