/**
 * Modal dialogs on the native <dialog> element (focus kept inside, Escape closes), a
 * confirmation built on it for actions that cannot be undone, and the buttons of a form in one.
 */

import { type ReactNode, useEffect, useId, useRef } from 'react';

export function Dialog(props: {
  readonly title: string;
  readonly onClose: () => void;
  readonly children: ReactNode;
  readonly isWide?: boolean;
}) {
  const { title, onClose, children, isWide } = props;
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog !== null && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      className={isWide === true ? 'dialog dialog-wide' : 'dialog'}
      aria-labelledby={titleId}
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      <div className="dialog-header">
        <h2 id={titleId}>{title}</h2>
        <button type="button" className="dialog-close" onClick={onClose} aria-label="Close">
          ×
        </button>
      </div>
      {children}
    </dialog>
  );
}

/** Asks before an action; the confirming button says what happens. */
export function ConfirmDialog(props: {
  readonly title: string;
  readonly children: ReactNode;
  readonly confirmLabel: string;
  readonly isDanger?: boolean;
  readonly isBusy?: boolean;
  readonly onConfirm: () => void;
  readonly onCancel: () => void;
}) {
  const { title, children, confirmLabel, isDanger, isBusy, onConfirm, onCancel } = props;
  return (
    <Dialog title={title} onClose={onCancel}>
      <div className="dialog-body">{children}</div>
      <div className="dialog-actions">
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
        <button
          type="button"
          className={isDanger === true ? 'button button-danger' : 'button button-primary'}
          onClick={onConfirm}
          disabled={isBusy === true}
        >
          {confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

/** A form dialog's buttons: Cancel, and the submit button saying what it does (Saving… meanwhile). */
export function FormDialogActions(props: {
  readonly submitLabel: string;
  readonly isSaving: boolean;
  readonly onCancel: () => void;
}) {
  const { submitLabel, isSaving, onCancel } = props;
  return (
    <div className="dialog-actions">
      <button type="button" className="button" onClick={onCancel}>
        Cancel
      </button>
      <button type="submit" className="button button-primary" disabled={isSaving}>
        {isSaving ? 'Saving…' : submitLabel}
      </button>
    </div>
  );
}
