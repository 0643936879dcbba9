import type { ReactNode } from "react";
import { saveBlob } from "../api";

export interface Column<R> {
  key: string;
  label: string;
  render?: (row: R) => ReactNode;
  /** The value written to CSV (default: row[key]). */
  csv?: (row: R) => unknown;
  numeric?: boolean;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  const s = typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv<R extends Record<string, any>>(columns: Column<R>[], rows: R[]): string {
  const lines = [columns.map((c) => cell(c.key)).join(",")];
  for (const r of rows) lines.push(columns.map((c) => cell(c.csv ? c.csv(r) : r[c.key])).join(","));
  return lines.join("\n") + "\n";
}

export function Table<R extends Record<string, any>>({
  columns,
  rows,
  csvName,
  onCsv,
  rowKey,
  testId,
}: {
  columns: Column<R>[];
  rows: R[];
  csvName?: string;
  /** Export through the server instead (exact decimals); default: the rows shown. */
  onCsv?: () => void;
  rowKey?: (row: R, i: number) => string;
  testId?: string;
}) {
  const exportCsv = () =>
    onCsv ? onCsv() : saveBlob(new Blob([toCsv(columns, rows)], { type: "text/csv" }), csvName ?? "export.csv");
  return (
    <div className="table-wrap" data-testid={testId}>
      {(csvName || onCsv) && (
        <div className="table-tools">
          <button type="button" className="secondary" onClick={exportCsv}>
            Export CSV
          </button>
        </div>
      )}
      <table>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.key} className={c.numeric ? "num" : undefined}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={rowKey ? rowKey(r, i) : i}>
              {columns.map((c) => (
                <td key={c.key} className={c.numeric ? "num" : undefined} data-col={c.key}>
                  {c.render ? c.render(r) : String(r[c.key] ?? "–")}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
