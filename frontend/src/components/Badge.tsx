/**
 * An unread count, drawn for the eye only: whatever it sits in names the count in its own
 * accessible name ("2 unread messages"), so a screen reader does not hear a bare number.
 */
export function Badge({ count }: { count: number }) {
  if (count <= 0) return null;
  return (
    <span className="badge" aria-hidden="true">
      {count > 99 ? "99+" : count}
    </span>
  );
}
