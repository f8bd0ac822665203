import { linkify } from "../../../lib/format";

/** A message body as text (React escapes it; never HTML), with http(s) links made clickable. */
export function MessageText({ text }: { text: string }) {
  return (
    <span className="msg__text">
      {linkify(text).map((p, i) =>
        p.kind === "link" ? (
          <a key={i} href={p.href} target="_blank" rel="noopener noreferrer nofollow">
            {p.text}
          </a>
        ) : (
          <span key={i}>{p.text}</span>
        ),
      )}
    </span>
  );
}
