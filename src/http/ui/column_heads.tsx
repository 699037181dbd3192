/** @jsxImportSource hono/jsx */
// A table's row of column headings: each one scoped to its column for screen readers, a figure's
// heading right-aligned over its figures.

export interface Column {
  label: string;
  /** Right-aligned, over figures. */
  num?: boolean;
  /** What the column means, where its label alone does not say. */
  title?: string;
}

export function ColumnHeads(props: { cols: readonly (string | Column)[] }) {
  return (
    <thead>
      <tr>
        {props.cols.map((c) =>
          typeof c === "string" ? (
            <th scope="col">{c}</th>
          ) : (
            <th scope="col" class={c.num ? "num" : undefined} title={c.title}>
              {c.label}
            </th>
          ),
        )}
      </tr>
    </thead>
  );
}
