/**
 * Newer and Older buttons for a list read a page at a time, newest first (the API's
 * `nextBefore`).
 */

export function Pager(props: {
  readonly hasNewer: boolean;
  readonly hasOlder: boolean;
  readonly isLoading: boolean;
  readonly onNewer: () => void;
  readonly onOlder: () => void;
}) {
  const { hasNewer, hasOlder, isLoading, onNewer, onOlder } = props;
  return (
    <div className="button-row button-row-tight">
      <button
        type="button"
        className="button button-small"
        disabled={!hasNewer || isLoading}
        onClick={onNewer}
      >
        ← Newer
      </button>
      <button
        type="button"
        className="button button-small"
        disabled={!hasOlder || isLoading}
        onClick={onOlder}
      >
        Older →
      </button>
    </div>
  );
}
