/**
 * A message box: an error, a warning, information or a success; errors and warnings are
 * announced to screen readers.
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
