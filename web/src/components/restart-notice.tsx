/**
 * The notice of saved settings that wait for a restart of the DICOM service, naming them, with
 * a Restart button for administrators.
 */

import { SETTING_LABELS } from '../config/setting-fields.js';
import { useLive } from '../live/live-events.js';
import { useServiceControl } from '../live/service-control.js';
import { useSession } from '../session.js';
import { Notice } from './notice.js';

export function RestartNotice() {
  const { pendingRestart, isAdmin } = useSession();
  const { status } = useLive();
  const control = useServiceControl();
  if (pendingRestart === undefined || pendingRestart.keys.length === 0) return null;
  const isRunning = status?.state === 'running';
  return (
    <Notice kind="warning" title={isRunning ? 'Restart needed' : 'Applies at the next start'}>
      <p>
        {isRunning
          ? 'These saved settings take effect when the DICOM service restarts: '
          : 'These saved settings take effect when the DICOM service starts: '}
        {pendingRestart.keys.map((key, index) => (
          <span key={key}>
            {index > 0 && ', '}
            <strong>{SETTING_LABELS[key]}</strong>
          </span>
        ))}
        .
      </p>
      {isAdmin && isRunning && (
        <p>
          <button
            type="button"
            className="button button-primary button-small"
            disabled={control.busy !== undefined}
            onClick={() => void control.run('restart')}
          >
            {control.busy === 'restart' ? 'Restarting…' : 'Restart now'}
          </button>{' '}
          <span className="muted small">
            Open associations get the shutdown grace period to finish.
          </span>
        </p>
      )}
      {control.error !== undefined && <p className="field-error">{control.error}</p>}
    </Notice>
  );
}
