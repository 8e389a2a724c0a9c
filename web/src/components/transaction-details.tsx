/**
 * Every field of a transaction row, with the status code and any reject or abort reason
 * explained in plain words and, where the console can tell, what to do about it.
 */

import type { TransactionRow } from '../api/types.js';
import { describeReason, describeStatus, formatStatus, sopClassName } from '../dicom-meanings.js';
import { formatBytes, formatDurationMs, formatTime } from '../format.js';
import { DetailItem, orDash } from './detail-item.js';

export function TransactionDetails(props: {
  readonly row: TransactionRow;
  readonly onFilterAe?: (ae: string) => void;
}) {
  const { row, onFilterAe } = props;
  const status = row.status_code === null ? undefined : describeStatus(row.status_code);
  const reason = describeReason(row.message);
  const advice = status?.advice ?? reason;
  const className = sopClassName(row.sop_class_uid);
  return (
    <div className="details">
      {(status !== undefined && row.status !== 'success') || reason !== undefined ? (
        <div className={`explain explain-${row.status}`}>
          {status !== undefined && row.status !== 'success' && (
            <p>
              <strong className="mono">{formatStatus(row.status_code ?? 0)}</strong>{' '}
              {status.meaning}
            </p>
          )}
          {advice !== undefined && <p>{advice}</p>}
        </div>
      ) : null}
      <dl className="detail-grid">
        <DetailItem label="Time">
          {formatTime(row.occurred_at)} <span className="muted mono small">{row.occurred_at}</span>
        </DetailItem>
        <DetailItem label="Row">{orDash(row.id)}</DetailItem>
        <DetailItem label="Type">{row.type}</DetailItem>
        <DetailItem label="Status">{row.status}</DetailItem>
        <DetailItem label="Status code">
          {row.status_code === null ? (
            orDash(null)
          ) : (
            <>
              <span className="mono">{formatStatus(row.status_code)}</span> {status?.meaning}
            </>
          )}
        </DetailItem>
        <DetailItem label="Message">{orDash(row.message)}</DetailItem>
        <DetailItem label="Calling AE">
          <span className="mono">{row.calling_ae}</span>
          {onFilterAe !== undefined && row.calling_ae !== '' && (
            <button
              type="button"
              className="link-button small"
              onClick={() => onFilterAe(row.calling_ae)}
            >
              only this AE
            </button>
          )}
        </DetailItem>
        <DetailItem label="Called AE" isMono>
          {row.called_ae}
        </DetailItem>
        <DetailItem label="Peer">
          <span className="mono">
            {row.remote_address}:{row.remote_port}
          </span>
        </DetailItem>
        <DetailItem label="Association" isMono>
          {row.association_id}
        </DetailItem>
        <DetailItem label="SOP class">
          {row.sop_class_uid === null ? (
            orDash(null)
          ) : (
            <>
              {className ?? 'unknown'} <span className="mono muted small">{row.sop_class_uid}</span>
            </>
          )}
        </DetailItem>
        <DetailItem label="SOP instance UID" isMono>
          {orDash(row.sop_instance_uid)}
        </DetailItem>
        <DetailItem label="Patient ID" isMono>
          {orDash(row.patient_id)}
        </DetailItem>
        <DetailItem label="Study instance UID" isMono>
          {orDash(row.study_instance_uid)}
        </DetailItem>
        <DetailItem label="Series instance UID" isMono>
          {orDash(row.series_instance_uid)}
        </DetailItem>
        <DetailItem label="File">
          <span className="mono break">{orDash(row.file_path)}</span>
        </DetailItem>
        <DetailItem label="Size">
          {row.bytes === null ? orDash(null) : `${formatBytes(row.bytes)} (${row.bytes} bytes)`}
        </DetailItem>
        <DetailItem label="Duration">{formatDurationMs(row.duration_ms)}</DetailItem>
        <DetailItem label="Transfer rate">
          {row.transfer_rate_mbps === null
            ? orDash(null)
            : `${row.transfer_rate_mbps.toFixed(2)} MB/s`}
        </DetailItem>
      </dl>
    </div>
  );
}
