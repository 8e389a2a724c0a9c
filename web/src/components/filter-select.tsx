/**
 * A list filter's drop-down: its label, "All ..." for no filter ('' as the value), then one
 * choice per option. The Processing, Routing and Transaction log pages filter with it.
 */

interface FilterSelectProps<T extends string> {
  readonly id: string;
  readonly label: string;
  /** The chosen option; '' for all. */
  readonly value: string;
  /** The no-filter choice's words ("All states"). */
  readonly allLabel: string;
  readonly options: readonly T[];
  /** An option's words (the option itself when absent). */
  readonly labelOf?: (option: T) => string;
  readonly className?: string;
  readonly onChange: (value: string) => void;
}

/** A labelled drop-down filter in a `filter` cell. */
export function FilterSelect<T extends string>(props: FilterSelectProps<T>) {
  const { id, label, value, allLabel, options, labelOf, className, onChange } = props;
  return (
    <div className="filter">
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        {...(className !== undefined && { className })}
        value={value}
        onChange={(event) => onChange(event.target.value)}
      >
        <option value="">{allLabel}</option>
        {options.map((option) => (
          <option key={option} value={option}>
            {labelOf?.(option) ?? option}
          </option>
        ))}
      </select>
    </div>
  );
}
