import { fileBadge, fileKind, splitName } from "../../../lib/attachments";

/** A file's icon: a tile coloured by its kind with its extension on it ("PDF", "ZIP"). */
export function FileIcon({ name, contentType, size = "md" }: { name: string; contentType: string; size?: "sm" | "md" }) {
  const label = fileBadge(name);
  return (
    <span className={`file-icon file-icon--${fileKind(name, contentType)} file-icon--${size} ${label.length > 3 ? "is-long" : ""}`} aria-hidden="true">
      <span className="file-icon__fold" />
      <span className="file-icon__label">{label}</span>
    </span>
  );
}

/**
 * A file name that, short of room, is cut in the middle and keeps its end with the extension
 * ("very-long-name…2026.pdf"). The two parts keep every space of the name (no gap added or
 * lost where they meet); the whole name is the tooltip.
 */
export function FileName({ name, className }: { name: string; className?: string }) {
  const { head, tail } = splitName(name);
  return (
    <span className={`file-name ${className ?? ""}`} title={name} dir="auto">
      <span className="file-name__head">{head}</span>
      {tail ? <span className="file-name__tail">{tail}</span> : null}
    </span>
  );
}
