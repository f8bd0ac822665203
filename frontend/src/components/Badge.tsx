export function Badge({ count, label }: { count: number; label: string }) {
  if (count <= 0) return null;
  return (
    <span className="badge" aria-label={label}>
      {count > 99 ? "99+" : count}
    </span>
  );
}
