import { useEffect } from "react";
import { AuthForm } from "../../features/auth";

export function LoginRoute() {
  useEffect(() => {
    document.title = "Log in · Let's Chat";
  }, []);
  return <AuthForm key="login" mode="login" />;
}

export function RegisterRoute() {
  useEffect(() => {
    document.title = "Sign up · Let's Chat";
  }, []);
  return <AuthForm key="register" mode="register" />;
}
