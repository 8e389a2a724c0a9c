/**
 * The heading of a table's actions column (Edit, Delete, Retry, Abort…), which only an
 * administrator sees: a viewer's table has neither the column nor its heading.
 */

/** The actions column's heading; render it for an administrator only. */
export function ActionsHeading() {
  return (
    <th scope="col" className="actions-col">
      Actions
    </th>
  );
}
