// The first screen's requests, started as soon as the session is known instead of one after another
// (config, then /me, then the page's data once React has rendered the page): main.tsx warms them while
// React and the page's chunks load, and the first component asking for the same key takes the request
// in flight. Only the first use is served from here; a reload or any later call asks the server again.
import { api, type Me } from "./api";

const inFlight = new Map<string, Promise<unknown>>();
const taken = new Set<string>();

/** The in-flight request for key if one was started early, else a fresh one from fetch(). */
export function take<T>(key: string, fetch: () => Promise<T>): Promise<T> {
  taken.add(key);
  const early = inFlight.get(key) as Promise<T> | undefined;
  inFlight.delete(key);
  return early ?? fetch();
}

function warm<T>(key: string, fetch: () => Promise<T>): Promise<T> | null {
  // A page that already asked has its own request: a late early one would only be stale for a reload.
  if (taken.has(key)) return null;
  const p = fetch();
  p.catch(() => undefined); // whoever takes it sees the error; unhandled until then is no error
  inFlight.set(key, p);
  return p;
}

/** The overview's keys, shared with the page so both name the same request. */
export const overviewKeys = {
  overview: (org: string) => `overview:${org}`,
  forecast: (org: string) => `forecast:${org}`,
  alerts: (org: string) => `open-alerts:${org}`,
  recommendations: (org: string) => `open-recommendations:${org}`,
};

export const openRecommendations = (org: string) =>
  api.recommendations({ org_id: org, status: "open", limit: 5 });

/**
 * Start /me and, when the URL names an organization on the overview, the overview's own answer; once
 * /me says what the role may read there, the overview's other sections too.
 */
export function warmFirstScreen(hash: string): void {
  const me = warm("me", api.me);
  const [path, search = ""] = hash.replace(/^#\/?/, "").split("?");
  const org = new URLSearchParams(search).get("org");
  if (!((path === "" || path === "overview") && org)) return;
  warm(overviewKeys.overview(org), () => api.overview(org));
  me?.then(
    (m: Me) => {
      const can = m.organizations.find((o) => o.id === org)?.permissions ?? [];
      if (can.includes("budgets.read")) warm(overviewKeys.forecast(org), () => api.forecast(org));
      if (can.includes("alerts.read")) warm(overviewKeys.alerts(org), () => api.alertEvents(org, "open"));
      if (can.includes("recommendations.read")) warm(overviewKeys.recommendations(org), () => openRecommendations(org));
    },
    () => undefined,
  );
}
