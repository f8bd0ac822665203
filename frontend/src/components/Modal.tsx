import { useEffect, useRef, type KeyboardEvent, type ReactNode, type RefObject } from "react";

type Props = {
  /** The id of the element naming the dialog (its title). */
  labelledBy: string;
  describedBy?: string;
  onClose: () => void;
  /** What gets focus on opening; else the first control. */
  initialFocus?: RefObject<HTMLElement | null>;
  className?: string;
  /** `alertdialog` for a question that needs an answer (a confirmation). */
  role?: "dialog" | "alertdialog";
  children: ReactNode;
};

const FOCUSABLE = "button:not([disabled]), input:not([disabled]), textarea:not([disabled]), a[href]";

/** Keeps Tab and Shift+Tab inside `root`: from its last control to its first, and back. */
export function keepTabInside(e: KeyboardEvent<HTMLElement>, root: HTMLElement | null): void {
  if (e.key !== "Tab") return;
  const focusables = Array.from(root?.querySelectorAll<HTMLElement>(FOCUSABLE) ?? []);
  const first = focusables[0];
  const last = focusables[focusables.length - 1];
  if (!first || !last) return;
  const active = document.activeElement;
  const outside = !root?.contains(active);
  if (e.shiftKey && (active === first || outside)) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && (active === last || outside)) {
    e.preventDefault();
    first.focus();
  }
}

/**
 * A modal dialog over a dimmed backdrop: focus moves in on opening and back to where it was on
 * closing, Tab stays inside, Escape and a click on the backdrop close it.
 */
export function Modal({ labelledBy, describedBy, onClose, initialFocus, className, role = "dialog", children }: Props) {
  const dialogRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const opener = document.activeElement;
    const target = initialFocus?.current ?? dialogRef.current?.querySelector<HTMLElement>(FOCUSABLE);
    target?.focus();
    return () => {
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    };
    // Only on opening and closing.
  }, []);

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      onClose();
      return;
    }
    keepTabInside(e, dialogRef.current);
  };

  return (
    <div className="dialog-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        className={`dialog ${className ?? ""}`}
        role={role}
        aria-modal="true"
        aria-labelledby={labelledBy}
        aria-describedby={describedBy}
        ref={dialogRef}
        onKeyDown={onKeyDown}
      >
        {children}
      </div>
    </div>
  );
}
