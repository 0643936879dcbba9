// The page chunks by route name: App.tsx renders them lazily, main.tsx prefetches the one in the URL.
export const PAGE_MODULES = {
  overview: () => import("./pages/Overview"),
  costs: () => import("./pages/Costs"),
  budgets: () => import("./pages/Budgets"),
  alerts: () => import("./pages/Alerts"),
  anomalies: () => import("./pages/Anomalies"),
  recommendations: () => import("./pages/Recommendations"),
  reconciliation: () => import("./pages/Reconciliation"),
  reports: () => import("./pages/Reports"),
  ask: () => import("./pages/Ask"),
  admin: () => import("./pages/Admin"),
};

export function prefetchPage(hash: string): void {
  const name = (hash.replace(/^#\/?/, "").split(/[/?]/)[0] || "overview") as keyof typeof PAGE_MODULES;
  void PAGE_MODULES[name]?.();
}
