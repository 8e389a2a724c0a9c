/**
 * Every field of a transaction row, with the status code and any reject or abort reason
 * explained in plain words and, where the console can tell, what to do about it.
 */

import type { ReactNode } from 'react';
import type { TransactionRow } from '../api/types.js';
import { describeReason, describeStatus, formatStatus, sopClassName } from '../dicom-meanings.js';
import { formatBytes, formatDurationMs, formatTime } from '../format.js';

function Item({ label, children }: { readonly label: string; readonly children: ReactNode }) {
  return (
    <div className="detail-item">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

const orDash = (value: string | number | null) =>
  value === null || value === '' ? <span className="muted">—</span> : value;

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
        <Item label="Time">
          {formatTime(row.occurred_at)} <span className="muted mono small">{row.occurred_at}</span>
        </Item>
        <Item label="Row">{orDash(row.id)}</Item>
        <Item label="Type">{row.type}</Item>
        <Item label="Status">{row.status}</Item>
        <Item label="Status code">
          {row.status_code === null ? (
            orDash(null)
          ) : (
            <>
              <span className="mono">{formatStatus(row.status_code)}</span> {status?.meaning}
            </>
          )}
        </Item>
        <Item label="Message">{orDash(row.message)}</Item>
        <Item label="Calling AE">
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
        </Item>
        <Item label="Called AE">
          <span className="mono">{row.called_ae}</span>
        </Item>
        <Item label="Peer">
          <span className="mono">
            {row.remote_address}:{row.remote_port}
          </span>
        </Item>
        <Item label="Association">
          <span className="mono">{row.association_id}</span>
        </Item>
        <Item label="SOP class">
          {row.sop_class_uid === null ? (
            orDash(null)
          ) : (
            <>
              {className ?? 'unknown'} <span className="mono muted small">{row.sop_class_uid}</span>
            </>
          )}
        </Item>
        <Item label="SOP instance UID">
          <span className="mono">{orDash(row.sop_instance_uid)}</span>
        </Item>
        <Item label="Patient ID">
          <span className="mono">{orDash(row.patient_id)}</span>
        </Item>
        <Item label="Study instance UID">
          <span className="mono">{orDash(row.study_instance_uid)}</span>
        </Item>
        <Item label="Series instance UID">
          <span className="mono">{orDash(row.series_instance_uid)}</span>
        </Item>
        <Item label="File">
          <span className="mono break">{orDash(row.file_path)}</span>
        </Item>
        <Item label="Size">
          {row.bytes === null ? orDash(null) : `${formatBytes(row.bytes)} (${row.bytes} bytes)`}
        </Item>
        <Item label="Duration">{formatDurationMs(row.duration_ms)}</Item>
        <Item label="Transfer rate">
          {row.transfer_rate_mbps === null
            ? orDash(null)
            : `${row.transfer_rate_mbps.toFixed(2)} MB/s`}
        </Item>
      </dl>
    </div>
  );
}
