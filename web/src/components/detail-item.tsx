/**
 * One field of an opened row's details (a `dl.detail-grid`): its label and value; a missing value
 * as a dash.
 */

import type { ReactNode } from 'react';

/** A field: its label, and its value (in the monospace font when `isMono`: UIDs, paths). */
export function DetailItem(props: {
  readonly label: string;
  readonly isMono?: boolean;
  readonly children: ReactNode;
}) {
  const { label, isMono, children } = props;
  return (
    <div className="detail-item">
      <dt>{label}</dt>
      <dd>{isMono === true ? <span className="mono">{children}</span> : children}</dd>
    </div>
  );
}

/** A value, or a dash when there is none (null or empty). */
export const orDash = (value: string | number | null) =>
  value === null || value === '' ? <span className="muted">—</span> : value;
