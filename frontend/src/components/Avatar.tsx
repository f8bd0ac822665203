import type { CSSProperties } from "react";
import { hueFor, initials } from "../lib/format";

type Props = { name: string; id: number; size?: "sm" | "md" | "lg"; online?: boolean | undefined };

/** Initials on a colour picked from the user id, with an optional presence dot. */
export function Avatar({ name, id, size = "md", online }: Props) {
  return (
    <span className={`avatar avatar--${size}`} style={{ "--avatar-hue": hueFor(id) } as CSSProperties} aria-hidden="true">
      {initials(name)}
      {online !== undefined ? <span className={`avatar__dot ${online ? "is-online" : ""}`} /> : null}
    </span>
  );
}
