/**
 * How numbers, sizes, times and DICOM values read in the console.
 */

const numberFormat = new Intl.NumberFormat('en-US');

/** 12,345 */
export function formatCount(value: number): string {
  return numberFormat.format(value);
}

/** The rows shown of a list: 51–100 of 1,234 (`firstIndex` counted from 0). */
export function formatRange(firstIndex: number, count: number, total: number): string {
  return `${formatCount(firstIndex + 1)}–${formatCount(firstIndex + count)} of ${formatCount(total)}`;
}

/** Binary units, as storage limits are set (GB = 1024³ bytes in the settings). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** 3 d 04:05:06, or 04:05:06 under a day. */
export function formatUptime(totalSeconds: number): string {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const days = Math.floor(seconds / 86_400);
  const hh = String(Math.floor((seconds % 86_400) / 3600)).padStart(2, '0');
  const mm = String(Math.floor((seconds % 3600) / 60)).padStart(2, '0');
  const ss = String(seconds % 60).padStart(2, '0');
  return days > 0 ? `${days} d ${hh}:${mm}:${ss}` : `${hh}:${mm}:${ss}`;
}

/** 850 ms, 12.3 s */
export function formatDurationMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** 2025-01-31 14:05:09 in local time (what an operator compares with a modality's clock). */
export function formatTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A wait in whole seconds: 45 s, 3 min 20 s, 2 h 5 min. */
export function formatWait(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) {
    const rest = seconds % 60;
    return `${Math.floor(seconds / 60)} min${rest === 0 ? '' : ` ${rest} s`}`;
  }
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** 14:05:09 today, the full date and time otherwise. */
export function formatShortTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const now = new Date();
  const isToday = d.toDateString() === now.toDateString();
  return isToday
    ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
    : formatTime(iso);
}

/** "5 min ago", for a last-seen time. */
export function formatAgo(iso: string, now = Date.now()): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(seconds)) return iso;
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** A DICOM date (YYYYMMDD) as 2025-01-31. */
export function formatDicomDate(value: string | null): string {
  if (value === null || value === '') return '—';
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(value);
  return match === null ? value : `${match[1]}-${match[2]}-${match[3]}`;
}

/** A DICOM person name (Family^Given^Middle^Prefix^Suffix) as "Family, Given Middle". */
export function formatPersonName(value: string | null): string {
  if (value === null || value === '') return '—';
  const alphabetic = value.split('=')[0] ?? value;
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = alphabetic.split('^');
  const rest = [prefix, given, middle, suffix].filter((part) => part !== '').join(' ');
  return rest === '' ? family : `${family}, ${rest}`;
}
