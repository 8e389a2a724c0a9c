/**
 * A transaction's outcome as a coloured badge, and a DICOM status code with its meaning.
 */

import type { TransactionStatus } from '../api/types.js';
import { describeStatus, formatStatus } from '../dicom-meanings.js';

export function StatusBadge({ status }: { readonly status: TransactionStatus }) {
  return <span className={`badge badge-${status}`}>{status}</span>;
}

/** 0xA700 with its meaning as a tooltip (and for screen readers). */
export function StatusCode({ code }: { readonly code: number | null }) {
  if (code === null) return <span className="muted">—</span>;
  const { meaning } = describeStatus(code);
  return (
    <abbr className="mono" title={meaning}>
      {formatStatus(code)}
    </abbr>
  );
}
