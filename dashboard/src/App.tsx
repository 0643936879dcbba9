import { lazy, Suspense, useEffect, useState, type ComponentType, type ReactNode } from "react";
import { createHashRouter, Navigate, NavLink, Outlet, RouterProvider, useLocation, useSearchParams } from "react-router";
import { api } from "./api";
import { currentSession, onSession, signOut } from "./auth";
import { Empty, ErrorBox, Loading } from "./components/State";
import { useAsync } from "./components/useAsync";
import { LiveProvider, useLive } from "./live";
import { loadedPage, loadPage, type PageModule, type PageName } from "./pageModules";
import { take } from "./prefetch";
import { SignIn } from "./pages/SignIn";
import { SessionProvider, useSession } from "./session";

// Each page is its own chunk, so the first screen evaluates only the shell and the page it shows
// (main.tsx starts loading that page's chunk before the session and config have answered). A chunk that
// has already loaded is handed to React.lazy as a thenable that answers at once, which React renders
// without suspending: behind a Suspense fallback, the page would be revealed up to 300 ms late (React
// throttles reveals after a fallback), though its code and often its data were already here.
function lazyPage<K extends PageName>(name: K, pick: (m: PageModule<K>) => ComponentType) {
  return lazy(() => {
    const m = loadedPage(name);
    if (!m) return loadPage(name).then((mod) => ({ default: pick(mod) }));
    const now = { default: pick(m) };
    return { then: (answer: (v: typeof now) => unknown) => answer(now) } as PromiseLike<typeof now> as Promise<typeof now>;
  });
}

const Overview = lazyPage("overview", (m) => m.Overview);
const Costs = lazyPage("costs", (m) => m.Costs);
const Budgets = lazyPage("budgets", (m) => m.Budgets);
const Alerts = lazyPage("alerts", (m) => m.Alerts);
const Anomalies = lazyPage("anomalies", (m) => m.Anomalies);
const Recommendations = lazyPage("recommendations", (m) => m.Recommendations);
const Reconciliation = lazyPage("reconciliation", (m) => m.Reconciliation);
const Reports = lazyPage("reports", (m) => m.Reports);
const Ask = lazyPage("ask", (m) => m.Ask);
const Admin = lazyPage("admin", (m) => m.Admin);

interface Page {
  path: string;
  label: string;
  permission: string | string[]; // any one of these
  requiresAll?: string[]; // and every one of these (a page that restates what several permissions guard)
  element: ReactNode;
}

export const PAGES: Page[] = [
  { path: "overview", label: "Overview", permission: "usage.read", element: <Overview /> },
  { path: "costs", label: "Costs", permission: "usage.read", element: <Costs /> },
  { path: "budgets", label: "Budgets", permission: "budgets.read", element: <Budgets /> },
  { path: "alerts", label: "Alerts", permission: "alerts.read", element: <Alerts /> },
  { path: "anomalies", label: "Anomalies", permission: "anomalies.read", element: <Anomalies /> },
  { path: "recommendations", label: "Recommendations", permission: "recommendations.read", element: <Recommendations /> },
  { path: "reconciliation", label: "Reconciliation", permission: "usage.read", element: <Reconciliation /> },
  // A weekly report restates usage, anomalies, budgets and recommendations: readable only with all four.
  {
    path: "reports",
    label: "Reports",
    permission: "usage.read",
    requiresAll: ["usage.read", "anomalies.read", "budgets.read", "recommendations.read"],
    element: <Reports />,
  },
  { path: "ask", label: "Ask", permission: "usage.read", element: <Ask /> },
  { path: "admin", label: "Admin", permission: ["members.read", "api_keys.read"], element: <Admin /> },
];

function allowed(page: Page, can: (p: string) => boolean): boolean {
  return (
    (Array.isArray(page.permission) ? page.permission : [page.permission]).some(can) &&
    (page.requiresAll ?? []).every(can)
  );
}

function Guard({ page }: { page: Page }) {
  const { can, org } = useSession();
  if (!allowed(page, can)) {
    return (
      <Empty>
        Your role in {org.name} ({org.role}) does not include this page.
      </Empty>
    );
  }
  return <Suspense fallback={<Loading what={page.label.toLowerCase()} />}>{page.element}</Suspense>;
}

function LiveBadge() {
  const { status } = useLive();
  return (
    <span className={`live live-${status}`} data-testid="live-status" title="live updates">
      {status === "live" ? "● live" : status === "connecting" ? "○ connecting" : "○ offline"}
    </span>
  );
}

function Shell() {
  const [session, setSession] = useState(currentSession());
  useEffect(() => onSession(setSession), []);
  const location = useLocation();
  const me = useAsync(() => take("me", api.me), [session?.accessToken]);
  if (!session) return <Navigate to={`/signin?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  if (me.error) return <ErrorBox error={me.error} retry={me.reload} />;
  if (!me.data) return <Loading what="your organizations" />;
  if (me.data.organizations.length === 0) {
    return (
      <Empty>
        {me.data.email ?? "You"} belong to no organization yet. An owner adds you with{" "}
        <code>tokentra users create EMAIL --org ORG_ID --role member</code>.
      </Empty>
    );
  }
  return (
    <SessionProvider me={me.data}>
      <LiveProvider>
        <Frame />
      </LiveProvider>
    </SessionProvider>
  );
}

function Frame() {
  const { me, org, can, setOrg } = useSession();
  const [params] = useSearchParams();
  const orgQuery = params.get("org") ? `?org=${params.get("org")}` : `?org=${org.id}`;
  return (
    <div className="app">
      <header>
        <span className="brand">TokenTRA</span>
        <nav>
          {PAGES.filter((p) => allowed(p, can)).map((p) => (
            <NavLink key={p.path} to={`/${p.path}${orgQuery}`} data-nav={p.path}>
              {p.label}
            </NavLink>
          ))}
        </nav>
        <span className="spacer" />
        {me.organizations.length > 1 ? (
          <select aria-label="organization" value={org.id} onChange={(e) => setOrg(e.target.value)}>
            {me.organizations.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name}
              </option>
            ))}
          </select>
        ) : (
          <span className="org">{org.name}</span>
        )}
        <span className="role" data-testid="role">
          {org.role}
        </span>
        <LiveBadge />
        <span className="user">{me.email}</span>
        <button type="button" className="secondary" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <main>
        <Outlet />
      </main>
    </div>
  );
}

const router = createHashRouter([
  { path: "/signin", element: <SignIn /> },
  {
    element: <Shell />,
    children: [
      { index: true, element: <Navigate to="/overview" replace /> },
      ...PAGES.map((p) => ({ path: p.path, element: <Guard page={p} /> })),
      { path: "*", element: <Navigate to="/overview" replace /> },
    ],
  },
]);

export function App() {
  return <RouterProvider router={router} />;
}
