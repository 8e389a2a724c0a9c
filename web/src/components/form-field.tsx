/**
 * A labelled form control with its hint and its error message (tied to the control with
 * aria-describedby and aria-invalid), and the controls the forms use.
 */

import { type ReactNode, useId } from 'react';

interface FieldProps {
  readonly label: string;
  readonly hint?: ReactNode;
  readonly error?: string | undefined;
  /** Small tags after the label ("restart", "set by flag"). */
  readonly tags?: ReactNode;
  /** Renders the control, given its id and the ids that describe it. */
  readonly children: (control: { id: string; describedBy: string | undefined }) => ReactNode;
}

/** A label above its control, the hint and the error below. */
export function Field({ label, hint, error, tags, children }: FieldProps) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy =
    [hint !== undefined ? hintId : '', error !== undefined ? errorId : '']
      .filter((part) => part !== '')
      .join(' ') || undefined;
  return (
    <div className={error === undefined ? 'field' : 'field field-invalid'}>
      <div className="field-label-row">
        <label htmlFor={id}>{label}</label>
        {tags}
      </div>
      {children({ id, describedBy })}
      {error !== undefined && (
        <p className="field-error" id={errorId}>
          {error}
        </p>
      )}
      {hint !== undefined && (
        <p className="field-hint" id={hintId}>
          {hint}
        </p>
      )}
    </div>
  );
}

/** A checkbox with its label beside it, its hint and error below. */
export function CheckboxField(props: {
  readonly label: string;
  readonly checked: boolean;
  readonly onChange: (checked: boolean) => void;
  readonly disabled?: boolean;
  readonly hint?: ReactNode;
  readonly error?: string | undefined;
  readonly tags?: ReactNode;
}) {
  const { label, checked, onChange, disabled, hint, error, tags } = props;
  const id = useId();
  return (
    <div className={error === undefined ? 'field field-check' : 'field field-check field-invalid'}>
      <div className="check-row">
        <input
          id={id}
          type="checkbox"
          checked={checked}
          disabled={disabled}
          onChange={(event) => onChange(event.target.checked)}
          aria-invalid={error !== undefined}
          aria-describedby={
            [hint !== undefined ? `${id}-hint` : '', error !== undefined ? `${id}-error` : '']
              .filter((part) => part !== '')
              .join(' ') || undefined
          }
        />
        <label htmlFor={id}>{label}</label>
        {tags}
      </div>
      {error !== undefined && (
        <p className="field-error" id={`${id}-error`}>
          {error}
        </p>
      )}
      {hint !== undefined && (
        <p className="field-hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
    </div>
  );
}

/** A small tag beside a label. */
export function Tag({
  kind,
  children,
  title,
}: {
  readonly kind: 'restart' | 'override' | 'changed';
  readonly children: ReactNode;
  readonly title?: string;
}) {
  return (
    <span className={`tag tag-${kind}`} title={title}>
      {children}
    </span>
  );
}
