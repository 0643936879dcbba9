// Live updates for the current organization: pages name the topics they care about and get a counter
// that moves when a message arrives on any of them.
import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { orgTopic, realtime, type RealtimeMessage, type Status } from "./realtime";
import { useSession } from "./session";

type Kind = "usage" | "alerts" | "recommendations" | "budgets";
interface LiveValue {
  status: Status;
  version: Record<Kind, number>;
  last: RealtimeMessage | null;
}

const Ctx = createContext<LiveValue>({
  status: "closed",
  version: { usage: 0, alerts: 0, recommendations: 0, budgets: 0 },
  last: null,
});

const PERMISSION: Record<Kind, string> = {
  usage: "usage.read",
  alerts: "alerts.read",
  recommendations: "recommendations.read",
  budgets: "budgets.read",
};

export function LiveProvider({ children }: { children: ReactNode }) {
  const { org } = useSession();
  const [status, setStatus] = useState<Status>("connecting");
  const [version, setVersion] = useState<Record<Kind, number>>({ usage: 0, alerts: 0, recommendations: 0, budgets: 0 });
  const [last, setLast] = useState<RealtimeMessage | null>(null);
  const orgId = useRef(org.id);
  orgId.current = org.id;
  const kinds = (Object.keys(PERMISSION) as Kind[]).filter((k) => org.permissions.includes(PERMISSION[k]));
  const key = `${org.id}|${kinds.join(",")}`;
  useEffect(() => {
    let stop: (() => void) | null = null;
    let cancelled = false;
    void realtime().then((rt) => {
      if (cancelled) return;
      stop = rt.subscribe(
        kinds.map((k) => orgTopic(org.id, k)),
        (m) => {
          const kind = m.topic.split(":")[2] as Kind;
          setLast(m);
          setVersion((v) => ({ ...v, [kind]: v[kind] + 1 }));
        },
        setStatus,
      );
    });
    return () => {
      cancelled = true;
      stop?.();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return <Ctx.Provider value={{ status, version, last }}>{children}</Ctx.Provider>;
}

export function useLive(): LiveValue {
  return useContext(Ctx);
}

/** Reload when a live counter moves (not on the first render, which loaded already). */
export function useLiveReload(version: number, reload: () => void): void {
  const first = useRef(version);
  useEffect(() => {
    if (version !== first.current) reload();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [version]);
}
