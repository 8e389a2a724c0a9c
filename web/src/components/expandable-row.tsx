/**
 * Table rows that open to show more below them: the rows open (a set of keys), the caret button
 * of a row's first cell that opens and closes it, and the detail row under it spanning every
 * column.
 */

import { type ReactNode, useState } from 'react';

/** The rows open in a list, by key: whether one is, a toggle of one, and closing them all. */
export function useOpenRows<K>(): {
  readonly isOpen: (key: K) => boolean;
  readonly toggle: (key: K) => void;
  readonly closeAll: () => void;
} {
  const [open, setOpen] = useState<ReadonlySet<K>>(new Set());
  const toggle = (key: K) =>
    setOpen((current) => {
      const next = new Set(current);
      if (!next.delete(key)) next.add(key);
      return next;
    });
  return { isOpen: (key) => open.has(key), toggle, closeAll: () => setOpen(new Set()) };
}

/** A row's caret button (▸ closed, ▾ open), with what the row shows beside it. */
export function RowToggle(props: {
  readonly isOpen: boolean;
  /** The id of the detail row it opens. */
  readonly controls: string;
  readonly onToggle: () => void;
  /** Its name for screen readers, where the text beside the caret does not say it. */
  readonly label?: string;
  readonly title?: string;
  readonly children: ReactNode;
}) {
  const { isOpen, controls, onToggle, label, title, children } = props;
  return (
    <button
      type="button"
      className="row-toggle"
      aria-expanded={isOpen}
      aria-controls={controls}
      aria-label={label}
      onClick={onToggle}
      title={title}
    >
      <span className="caret" aria-hidden="true">
        {isOpen ? '▾' : '▸'}
      </span>
      {children}
    </button>
  );
}

/** The row under a row, across all its `columns`, holding its details. */
export function DetailRow(props: {
  readonly id?: string;
  readonly columns: number;
  readonly children: ReactNode;
}) {
  const { id, columns, children } = props;
  return (
    <tr className="row-detail" id={id}>
      <td colSpan={columns}>{children}</td>
    </tr>
  );
}
