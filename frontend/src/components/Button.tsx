import type { ButtonHTMLAttributes, Ref } from "react";
import { Spinner } from "./Spinner";

type Props = ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: "primary" | "ghost" | "subtle" | "danger";
  busy?: boolean;
  icon?: boolean;
  ref?: Ref<HTMLButtonElement>;
};

export function Button({ variant = "primary", busy = false, icon = false, className, children, disabled, ...rest }: Props) {
  const cls = ["btn", `btn--${variant}`, icon ? "btn--icon" : "", className ?? ""].filter(Boolean).join(" ");
  return (
    <button type="button" className={cls} disabled={disabled || busy} aria-busy={busy || undefined} {...rest}>
      {busy ? <Spinner size="sm" /> : null}
      {children}
    </button>
  );
}
