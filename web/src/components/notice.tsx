/**
 * A message box: an error, a warning, information or a success; errors and warnings are
 * announced to screen readers. An action's outcome is one, until dismissed.
 */

import type { ReactNode } from 'react';

export function Notice(props: {
  readonly kind: 'error' | 'warning' | 'info' | 'success';
  readonly title?: string;
  readonly children?: ReactNode;
  readonly onClose?: () => void;
}) {
  const { kind, title, children, onClose } = props;
  const isUrgent = kind === 'error' || kind === 'warning';
  return (
    <div className={`notice notice-${kind}`} role={isUrgent ? 'alert' : 'status'}>
      <div className="notice-body">
        {title !== undefined && <strong className="notice-title">{title}</strong>}
        {children}
      </div>
      {onClose !== undefined && (
        <button type="button" className="notice-close" onClick={onClose} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  );
}

/** What an action came to, in words: done, nothing to do, or the API's message. */
export interface Outcome {
  readonly kind: 'success' | 'info' | 'error';
  readonly text: string;
}

/** An action's outcome (nothing when there is none), with a button to dismiss it. */
export function OutcomeNotice(props: {
  readonly outcome: Outcome | undefined;
  readonly onClose: () => void;
}) {
  const { outcome, onClose } = props;
  if (outcome === undefined) return null;
  return (
    <Notice kind={outcome.kind} onClose={onClose}>
      {outcome.text}
    </Notice>
  );
}
