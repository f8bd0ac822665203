import { useId, useState, type FormEvent, type ReactNode } from "react";
import { ApiError } from "../../../lib/api-client";
import { Link } from "../../../lib/router";
import { useApi, useServices } from "../../../lib/services";
import { Button } from "../../../components/Button";
import { Icon } from "../../../components/Icon";
import { login, register } from "../api";

type Mode = "login" | "register";

const USERNAME_RE = /^[A-Za-z0-9_.-]{3,32}$/u;

export function AuthForm({ mode }: { mode: Mode }) {
  const api = useApi();
  const { session } = useServices();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(() =>
    mode === "login" && session.endReason() === "expired" ? "Your session ended. Please log in again." : null,
  );
  const [notice] = useState<string | null>(() =>
    mode === "login" && session.endReason() === "deleted" ? "Your account was deleted. Thanks for chatting with us." : null,
  );
  const [fields, setFields] = useState<Record<string, string>>({});
  const id = useId();

  const validate = (): Record<string, string> => {
    const f: Record<string, string> = {};
    if (mode === "register") {
      if (!USERNAME_RE.test(username))
        f.username = "3–32 characters: letters, digits, dot, dash or underscore.";
      if (password.length < 8) f.password = "At least 8 characters.";
      else if (password.length > 128) f.password = "At most 128 characters.";
      if (displayName.length > 64) f.display_name = "At most 64 characters.";
    } else {
      if (!username.trim()) f.username = "Enter your username.";
      if (!password) f.password = "Enter your password.";
    }
    return f;
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const f = validate();
    setFields(f);
    setError(null);
    if (Object.keys(f).length > 0) return;
    setBusy(true);
    try {
      const res =
        mode === "login"
          ? await login(api, username.trim(), password)
          : await register(api, username.trim(), password, displayName);
      session.set({ token: res.token, user: res.user });
    } catch (err) {
      setBusy(false);
      if (!(err instanceof ApiError)) {
        setError("Something went wrong. Please try again.");
        return;
      }
      if (err.status === 401) setError("Wrong username or password.");
      else if (err.status === 409) setFields({ username: "This username is taken. Try another one." });
      else if (err.status === 429) setError("Too many attempts. Wait a minute and try again.");
      else if (Object.keys(err.fields).length > 0) setFields(err.fields);
      else setError(err.message);
    }
  };

  const field = (name: string, label: string, input: ReactNode, hint?: string) => (
    <div className={`field ${fields[name] ? "has-error" : ""}`}>
      <label htmlFor={`${id}-${name}`}>{label}</label>
      {input}
      {fields[name] ? (
        <p className="field__error" id={`${id}-${name}-err`}>
          {fields[name]}
        </p>
      ) : hint ? (
        <p className="field__hint" id={`${id}-${name}-hint`}>
          {hint}
        </p>
      ) : null}
    </div>
  );
  const describedBy = (name: string, hasHint = false) =>
    fields[name] ? `${id}-${name}-err` : hasHint ? `${id}-${name}-hint` : undefined;

  return (
    <div className="auth">
      <div className="auth__card">
        <div className="auth__brand">
          <span className="auth__logo" aria-hidden="true">
            <Icon name="chat" />
          </span>
          <span>Let's Chat</span>
        </div>
        <h1 className="auth__title">{mode === "login" ? "Welcome back" : "Create your account"}</h1>
        <p className="auth__subtitle">
          {mode === "login" ? "Log in to pick up your conversations." : "It takes ten seconds. No email needed."}
        </p>
        <form onSubmit={submit} noValidate aria-label={mode === "login" ? "Log in" : "Sign up"}>
          {notice && !error ? (
            <div className="auth__notice" role="status">
              <Icon name="check" /> {notice}
            </div>
          ) : null}
          {error ? (
            <div className="auth__error" role="alert">
              <Icon name="alert" /> {error}
            </div>
          ) : null}
          {field(
            "username",
            "Username",
            <input
              id={`${id}-username`}
              name="username"
              autoComplete="username"
              autoCapitalize="none"
              spellCheck={false}
              autoFocus
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              aria-invalid={fields.username ? true : undefined}
              aria-describedby={describedBy("username", mode === "register")}
            />,
            mode === "register" ? "Letters, digits, dot, dash or underscore." : undefined,
          )}
          {mode === "register"
            ? field(
                "display_name",
                "Display name (optional)",
                <input
                  id={`${id}-display_name`}
                  name="display_name"
                  autoComplete="name"
                  value={displayName}
                  onChange={(e) => setDisplayName(e.target.value)}
                  aria-invalid={fields.display_name ? true : undefined}
                  aria-describedby={describedBy("display_name", true)}
                />,
                "How others see you. Defaults to your username.",
              )
            : null}
          {field(
            "password",
            "Password",
            <input
              id={`${id}-password`}
              name="password"
              type="password"
              autoComplete={mode === "login" ? "current-password" : "new-password"}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              aria-invalid={fields.password ? true : undefined}
              aria-describedby={describedBy("password", mode === "register")}
            />,
            mode === "register" ? "At least 8 characters." : undefined,
          )}
          <Button type="submit" busy={busy} className="auth__submit">
            {mode === "login" ? "Log in" : "Create account"}
          </Button>
        </form>
        <p className="auth__switch">
          {mode === "login" ? (
            <>
              New here? <Link to="/register">Create an account</Link>
            </>
          ) : (
            <>
              Already have an account? <Link to="/login">Log in</Link>
            </>
          )}
        </p>
      </div>
    </div>
  );
}
