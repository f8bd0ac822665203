import { useId, useRef, useState, type ReactNode } from "react";
import { ApiError } from "../lib/api-client";
import { Button } from "./Button";
import { Modal } from "./Modal";

type Props = {
  title: string;
  children: ReactNode;
  /** The danger button's label. */
  confirmLabel: string;
  /** Shown when `onConfirm` fails with something other than the server's own message. */
  failure: string;
  onCancel: () => void;
  onConfirm: () => Promise<void>;
};

/** Asks before something that can't be undone; Cancel has the focus, Escape cancels, a failure
 *  shows in the dialog and leaves it open. */
export function ConfirmDialog({ title, children, confirmLabel, failure, onCancel, onConfirm }: Props) {
  const id = useId();
  const cancelRef = useRef<HTMLButtonElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
    } catch (err) {
      setBusy(false);
      setError(err instanceof ApiError ? err.message : failure);
    }
  };

  return (
    <Modal labelledBy={`${id}-title`} describedBy={`${id}-text`} onClose={onCancel} initialFocus={cancelRef} role="alertdialog" className="dialog--confirm">
      <div className="confirm">
        <h2 id={`${id}-title`}>{title}</h2>
        <p id={`${id}-text`}>{children}</p>
        {error ? (
          <p className="dialog__error" role="alert">
            {error}
          </p>
        ) : null}
        <div className="confirm__actions">
          <Button variant="ghost" ref={cancelRef} onClick={onCancel}>
            Cancel
          </Button>
          <Button variant="danger" busy={busy} onClick={() => void confirm()}>
            {confirmLabel}
          </Button>
        </div>
      </div>
    </Modal>
  );
}
