// Supabase Realtime: one private broadcast channel per topic, joined with the user's JWT.
import { currentSession } from "../auth";
import { supabaseClient } from "../supabase";
import type { RealtimeTransport } from "./index";

export function supabaseTransport(): RealtimeTransport {
  return {
    subscribe(topics, onMessage, onStatus) {
      let stopped = false;
      const leave: Array<() => void> = [];
      void (async () => {
        const sb = await supabaseClient();
        const s = currentSession();
        if (s) await sb.realtime.setAuth(s.accessToken);
        if (stopped) return;
        onStatus?.("connecting");
        for (const topic of topics) {
          const channel = sb
            .channel(topic, { config: { private: true } })
            .on("broadcast", { event: "*" }, (msg) => onMessage({ topic, event: msg.event, payload: msg.payload }))
            .subscribe((state) => {
              if (state === "SUBSCRIBED") onStatus?.("live");
              else if (state === "CHANNEL_ERROR" || state === "TIMED_OUT") onStatus?.("error");
            });
          leave.push(() => void sb.removeChannel(channel));
        }
      })();
      return () => {
        stopped = true;
        leave.forEach((f) => f());
      };
    },
  };
}
