// The page chunks by route name: App.tsx renders them lazily, main.tsx prefetches the one in the URL.
const IMPORTS = {
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

export type PageName = keyof typeof IMPORTS;
export type PageModule<K extends PageName> = Awaited<ReturnType<(typeof IMPORTS)[K]>>;
const loaded: { [K in PageName]?: PageModule<K> } = {};

/** The page's chunk, remembered once it has loaded. */
export function loadPage<K extends PageName>(name: K): Promise<PageModule<K>> {
  return (IMPORTS[name]() as Promise<PageModule<K>>).then((m) => {
    (loaded as Record<string, unknown>)[name] = m;
    return m;
  });
}

/** The page's module if its chunk has loaded, so it can render without suspending. */
export const loadedPage = <K extends PageName>(name: K): PageModule<K> | undefined => loaded[name];

export function prefetchPage(hash: string): void {
  const name = (hash.replace(/^#\/?/, "").split(/[/?]/)[0] || "overview") as PageName;
  if (name in IMPORTS) void loadPage(name);
}
