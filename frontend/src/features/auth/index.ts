export { AuthForm } from "./components/AuthForm";
export { useLogout } from "./hooks/useLogout";
