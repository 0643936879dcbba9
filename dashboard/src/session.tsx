// Who is signed in, which organizations they belong to and what their role there allows. The
// permission names are the database's (private.role_permissions), returned by GET /me; pages hide
// every control the role could not use, RLS refuses it anyway.
import { createContext, useContext, useEffect, type ReactNode } from "react";
import { useSearchParams } from "react-router";
import type { Me, Organization } from "./api";

export interface SessionValue {
  me: Me;
  org: Organization;
  can: (permission: string) => boolean;
  setOrg: (id: string) => void;
}

const Ctx = createContext<SessionValue | null>(null);

export function SessionProvider({ me, children }: { me: Me; children: ReactNode }) {
  const [params, setParams] = useSearchParams();
  const wanted = params.get("org");
  const org = me.organizations.find((o) => o.id === wanted) ?? me.organizations[0];
  const value: SessionValue = {
    me,
    org,
    can: (p) => org.permissions.includes(p),
    setOrg: (id) => {
      const next = new URLSearchParams();
      next.set("org", id);
      setParams(next);
    },
  };
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useSession(): SessionValue {
  const v = useContext(Ctx);
  if (!v) throw new Error("useSession outside SessionProvider");
  return v;
}

/** A page's filters live in the URL's query, so every view can be shared by its address. */
export function useQueryState(defaults: Record<string, string>) {
  const [params, setParams] = useSearchParams();
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(defaults)) values[k] = params.get(k) ?? v;
  const update = (patch: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(patch)) {
      if (v === null || v === "" || v === defaults[k]) next.delete(k);
      else next.set(k, v);
    }
    setParams(next, { replace: false });
  };
  return [values, update] as const;
}

export function useDocumentTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · TokenTRA`;
  }, [title]);
}
