import { ConfirmDialog } from "../../../components/ConfirmDialog";

type Props = { onCancel: () => void; onConfirm: () => Promise<void> };

/** Asks before deleting a message for both members; Cancel has the focus, Escape cancels. */
export function DeleteDialog({ onCancel, onConfirm }: Props) {
  return (
    <ConfirmDialog
      title="Delete this message?"
      confirmLabel="Delete"
      failure="Couldn't delete the message. Please try again."
      onCancel={onCancel}
      onConfirm={onConfirm}
    >
      It will be deleted for both of you. This can't be undone.
    </ConfirmDialog>
  );
}
