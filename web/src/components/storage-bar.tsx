/**
 * Storage used against the limit: a bar (green, amber from 75 %, red from 90 %) with the
 * numbers written out, the cleanup's low-water mark on it when cleanup runs; below, the intake
 * of the last week and when the storage would be full at that rate, and what the cleanup job
 * last did. Without a limit, only the amount used and the intake.
 */

import type { StorageStatusFields } from '../api/storage-types.js';
import { formatBytes, formatCount, formatShortTime } from '../format.js';

/** "in about 12 days", as a projection reads. */
export function formatDaysUntilFull(days: number): string {
  if (days <= 0) return 'full now';
  if (days < 1) return 'full in less than a day';
  if (days > 3650) return 'full in more than ten years';
  const rounded = Math.round(days);
  return `full in about ${formatCount(rounded)} ${rounded === 1 ? 'day' : 'days'}`;
}

function IntakeLine(props: { readonly storage: StorageStatusFields }) {
  const { storageIntakeBytesPerDay: perDay, storageDaysUntilFull: days } = props.storage;
  if (perDay === null) return <p className="muted small">Intake not measured yet.</p>;
  if (perDay === 0) return <p className="muted small">Nothing received in the last 7 days.</p>;
  return (
    <p className="small">
      Intake {formatBytes(perDay)}/day <span className="muted">(last 7 days)</span>
      {days !== null && (
        <>
          {' · '}
          <span className={days < 7 ? 'text-bad' : undefined}>{formatDaysUntilFull(days)}</span>
        </>
      )}
    </p>
  );
}

function CleanupLine(props: { readonly storage: StorageStatusFields }) {
  const cleanup = props.storage.storageCleanup;
  if (cleanup === null) return null;
  const last = cleanup.lastRun;
  return (
    <p className="small">
      Cleanup brings usage down to {formatBytes(cleanup.lowWaterBytes)}, deleting whole studies
      older than {formatCount(cleanup.retentionDays)} days whose hand-off is done.{' '}
      <span className="muted">
        {last === null
          ? 'Not run yet.'
          : `Last run ${formatShortTime(last.finishedAt)}: ${formatCount(last.studies)} ${
              last.studies === 1 ? 'study' : 'studies'
            } deleted, ${formatBytes(last.freedBytes)} freed${
              last.isEnough ? '' : '; nothing more may go yet'
            }.`}
      </span>
    </p>
  );
}

export function StorageBar(props: {
  readonly usedBytes: number;
  readonly limitBytes: number | null;
  readonly isMeasured: boolean;
  /** Intake, projection and cleanup (the status's storage fields). */
  readonly storage?: StorageStatusFields;
}) {
  const { usedBytes, limitBytes, isMeasured, storage } = props;
  if (!isMeasured) {
    return (
      <>
        <p className="muted small">Measured while the service runs.</p>
        {storage !== undefined && <IntakeLine storage={storage} />}
      </>
    );
  }
  if (limitBytes === null || limitBytes <= 0) {
    return (
      <>
        <p className="small">
          {formatBytes(usedBytes)} used · <span className="muted">no limit set</span>
        </p>
        {storage !== undefined && <IntakeLine storage={storage} />}
      </>
    );
  }
  const ratio = Math.min(1, usedBytes / limitBytes);
  const percent = Math.round((usedBytes / limitBytes) * 1000) / 10;
  const tone = ratio >= 0.9 ? 'bad' : ratio >= 0.75 ? 'warn' : 'ok';
  const text = `${formatBytes(usedBytes)} of ${formatBytes(limitBytes)} (${percent} %)`;
  const lowWater = storage?.storageCleanup?.lowWaterBytes;
  return (
    <div className="storage">
      {/* The text below says it all; the bar is its picture. */}
      <div className="bar" aria-hidden="true" style={{ position: 'relative' }}>
        <div className={`bar-fill bar-${tone}`} style={{ width: `${ratio * 100}%` }} />
        {lowWater !== undefined && (
          <div
            style={{
              position: 'absolute',
              top: 0,
              bottom: 0,
              left: `${Math.min(100, (lowWater / limitBytes) * 100)}%`,
              width: 2,
              background: 'currentColor',
              opacity: 0.45,
            }}
          />
        )}
      </div>
      <p className="small">{text}</p>
      {storage !== undefined && <IntakeLine storage={storage} />}
      {storage !== undefined && <CleanupLine storage={storage} />}
    </div>
  );
}
