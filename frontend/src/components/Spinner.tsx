export function Spinner({ size = "md", label }: { size?: "sm" | "md"; label?: string }) {
  return (
    <span className={`spinner spinner--${size}`} role={label ? "status" : undefined} aria-label={label}>
      <span aria-hidden="true" />
    </span>
  );
}
