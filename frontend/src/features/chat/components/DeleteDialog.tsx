import { useId, useRef, useState } from "react";
import { Button } from "../../../components/Button";
import { Modal } from "../../../components/Modal";
import { ApiError } from "../../../lib/api-client";

type Props = { onCancel: () => void; onConfirm: () => Promise<void> };

/** Asks before deleting a message for both members; Cancel has the focus, Escape cancels. */
export function DeleteDialog({ onCancel, onConfirm }: Props) {
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
      setError(err instanceof ApiError ? err.message : "Couldn't delete the message. Please try again.");
    }
  };

  return (
    <Modal labelledBy={`${id}-title`} describedBy={`${id}-text`} onClose={onCancel} initialFocus={cancelRef} role="alertdialog" className="dialog--confirm">
      <div className="confirm">
        <h2 id={`${id}-title`}>Delete this message?</h2>
        <p id={`${id}-text`}>It will be deleted for both of you. This can't be undone.</p>
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
            Delete
          </Button>
        </div>
      </div>
    </Modal>
  );
}
