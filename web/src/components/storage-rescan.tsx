/**
 * The storage rescan on the dashboard: an administrator starts it (after a confirmation);
 * anyone follows its progress (read every second while it runs) and reads its report: the
 * counts, and the paths of the orphan files it indexed, the missing files whose index entries
 * it removed, and the files it left alone.
 */

import { useEffect, useState } from 'react';
import { messageOf } from '../api/client.js';
import type { RescanStatus } from '../api/storage-types.js';
import { formatBytes, formatCount, formatTime } from '../format.js';
import { useSession } from '../session.js';
import { useApi } from '../use-api.js';
import { ConfirmDialog } from './dialog.js';
import { Notice } from './notice.js';

/** How often a running rescan's progress is read. */
const RESCAN_POLL_MS = 1000;

const RESCAN_TEXT =
  'The files on disk are compared with the index: files the index lacks are indexed, index entries whose file is gone are removed. It runs in the background; receiving goes on.';

/** The storage rescan: start it (administrators), follow it, read its report. */
export function StorageRescanCard() {
  const { api, isAdmin } = useSession();
  const rescan = useApi<RescanStatus>('storage/rescan');
  const [isConfirming, setIsConfirming] = useState(false);
  const [isStarting, setIsStarting] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const { reload, setData } = rescan;
  const isRunning = rescan.data?.state === 'running';

  useEffect(() => {
    if (!isRunning) return;
    const timer = window.setInterval(reload, RESCAN_POLL_MS);
    return () => window.clearInterval(timer);
  }, [isRunning, reload]);

  const start = () => {
    setIsConfirming(false);
    setIsStarting(true);
    setError(undefined);
    api.post<RescanStatus>('storage/rescan').then(
      (status) => {
        setData(status);
        setIsStarting(false);
      },
      (failure: unknown) => {
        setError(messageOf(failure));
        setIsStarting(false);
        reload();
      },
    );
  };

  return (
    <section className="card" aria-labelledby="rescan-title">
      <div className="card-head">
        <h2 id="rescan-title">Storage rescan</h2>
        {isAdmin && (
          <button
            type="button"
            className="button"
            disabled={isRunning || isStarting || rescan.data === undefined}
            onClick={() => setIsConfirming(true)}
          >
            {isRunning || isStarting ? 'Rescanning…' : 'Rescan storage'}
          </button>
        )}
      </div>
      {error !== undefined && (
        <Notice kind="error" onClose={() => setError(undefined)}>
          {error}
        </Notice>
      )}
      {rescan.error !== undefined && <Notice kind="error">{rescan.error}</Notice>}
      {rescan.data !== undefined && <RescanState status={rescan.data} />}
      {isConfirming && (
        <ConfirmDialog
          title="Rescan the storage?"
          confirmLabel="Rescan storage"
          onConfirm={start}
          onCancel={() => setIsConfirming(false)}
        >
          <p>{RESCAN_TEXT}</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function RescanState(props: { readonly status: RescanStatus }) {
  const { status } = props;
  const report = status.report;
  if (status.state === 'idle') {
    return <p className="muted small">No rescan since the server started. {RESCAN_TEXT}</p>;
  }
  return (
    <>
      <p className="small" role="status">
        {status.state === 'running' &&
          `Running since ${formatTime(status.startedAt)}: ${
            status.phase === 'index' ? 'checking the index against the files' : 'reading the files'
          }…`}
        {status.state === 'done' && `Finished ${formatTime(status.finishedAt)}.`}
        {status.state === 'failed' && (
          <span className="text-bad">
            Failed {formatTime(status.finishedAt)}: {status.error}
          </span>
        )}{' '}
        <span className="muted">Started by {status.startedBy}.</span>
      </p>
      {report !== null && (
        <>
          <dl className="facts">
            <div>
              <dt>Files checked</dt>
              <dd>{formatCount(report.filesChecked)}</dd>
            </div>
            <div>
              <dt>Orphan files indexed</dt>
              <dd>
                {formatCount(report.orphanFiles)}{' '}
                <span className="muted small">{formatBytes(report.orphanBytes)}</span>
              </dd>
            </div>
            <div>
              <dt>Index entries checked</dt>
              <dd>{formatCount(report.instancesChecked)}</dd>
            </div>
            <div>
              <dt>Missing files (entries removed)</dt>
              <dd className={report.missingFiles > 0 ? 'text-bad' : undefined}>
                {formatCount(report.missingFiles)}{' '}
                <span className="muted small">{formatBytes(report.missingBytes)}</span>
              </dd>
            </div>
            <div>
              <dt>Duplicates left alone</dt>
              <dd>{formatCount(report.duplicateFiles)}</dd>
            </div>
            <div>
              <dt>Not DICOM, left alone</dt>
              <dd>{formatCount(report.unreadableFiles)}</dd>
            </div>
            <div>
              <dt>Too recent, skipped</dt>
              <dd>{formatCount(report.recentFiles)}</dd>
            </div>
          </dl>
          <PathList
            title="Orphan files indexed"
            paths={report.listed.orphan}
            total={report.orphanFiles}
          />
          <PathList
            title="Missing files"
            paths={report.listed.missing}
            total={report.missingFiles}
          />
          <PathList
            title="Duplicate files (their instance is indexed elsewhere)"
            paths={report.listed.duplicate}
            total={report.duplicateFiles}
          />
          <PathList
            title="Files not readable as DICOM"
            paths={report.listed.unreadable}
            total={report.unreadableFiles}
          />
        </>
      )}
    </>
  );
}

/** The listed paths of one kind, folded; says when more were found than listed. */
function PathList(props: {
  readonly title: string;
  readonly paths: readonly string[];
  readonly total: number;
}) {
  const { title, paths, total } = props;
  if (total === 0) return null;
  return (
    <details className="small">
      <summary>
        {title} ({formatCount(total)})
      </summary>
      <ul className="mono">
        {paths.map((path) => (
          <li key={path}>{path}</li>
        ))}
      </ul>
      {total > paths.length && (
        <p className="muted">…and {formatCount(total - paths.length)} more.</p>
      )}
    </details>
  );
}
