/** One headline figure: a label, the value, an optional line under it. */
export function Kpi({ label, value, sub, id }: { label: string; value: string; sub?: string; id: string }) {
  return (
    <div className="kpi" data-kpi={id}>
      <div className="kpi-label">{label}</div>
      <div className="kpi-value">{value}</div>
      {sub && <div className="kpi-sub">{sub}</div>}
    </div>
  );
}
