/**
 * Storage used against the limit: a bar (green, amber from 75 %, red from 90 %) with the
 * numbers written out; without a limit, only the amount used.
 */

import { formatBytes } from '../format.js';

export function StorageBar(props: {
  readonly usedBytes: number;
  readonly limitBytes: number | null;
  readonly isMeasured: boolean;
}) {
  const { usedBytes, limitBytes, isMeasured } = props;
  if (!isMeasured) {
    return <p className="muted small">Measured while the service runs.</p>;
  }
  if (limitBytes === null || limitBytes <= 0) {
    return (
      <p className="small">
        {formatBytes(usedBytes)} used · <span className="muted">no limit set</span>
      </p>
    );
  }
  const ratio = Math.min(1, usedBytes / limitBytes);
  const percent = Math.round((usedBytes / limitBytes) * 1000) / 10;
  const tone = ratio >= 0.9 ? 'bad' : ratio >= 0.75 ? 'warn' : 'ok';
  const text = `${formatBytes(usedBytes)} of ${formatBytes(limitBytes)} (${percent} %)`;
  return (
    <div className="storage">
      {/* The text below says it all; the bar is its picture. */}
      <div className="bar" aria-hidden="true">
        <div className={`bar-fill bar-${tone}`} style={{ width: `${ratio * 100}%` }} />
      </div>
      <p className="small">{text}</p>
    </div>
  );
}
