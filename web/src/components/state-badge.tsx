/**
 * A state in words and colour: its label, tone and meaning, shown as a badge with the meaning as
 * the tooltip. The hand-off's states (handoff-state.tsx) and forwarding's (forward-state.tsx)
 * are tables of these.
 */

/** A badge's colour, by what it says (styles.css: `badge-<tone>`). */
export type Tone = 'neutral' | 'info' | 'success' | 'warning' | 'failure';

/** A state's label, colour and meaning. */
export interface StateMeaning {
  readonly label: string;
  readonly tone: Tone;
  readonly meaning: string;
}

/** A state as a badge, its meaning as the tooltip. */
export function StateBadge({ meaning }: { readonly meaning: StateMeaning }) {
  return (
    <span className={`badge badge-${meaning.tone} badge-label`} title={meaning.meaning}>
      {meaning.label}
    </span>
  );
}
