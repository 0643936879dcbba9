// Local development transport: a streamed GET (fetch, so the JWT goes in a header, not in the URL)
// parsed as server-sent events; reconnects with backoff and resumes after the last event id.
import { createParser } from "eventsource-parser";
import { currentSession } from "../auth";
import { config } from "../config";
import type { RealtimeMessage, RealtimeTransport, Status } from "./index";

export function sseTransport(): RealtimeTransport {
  return {
    subscribe(topics, onMessage, onStatus) {
      const controller = new AbortController();
      let lastId: string | null = null;
      let attempt = 0;
      const status = (s: Status) => onStatus?.(s);

      async function connect(): Promise<void> {
        while (!controller.signal.aborted) {
          status("connecting");
          try {
            const q = new URLSearchParams();
            topics.forEach((t) => q.append("topic", t));
            const headers: Record<string, string> = { accept: "text/event-stream" };
            const s = currentSession();
            if (s) headers.authorization = `Bearer ${s.accessToken}`;
            if (lastId) headers["last-event-id"] = lastId;
            const res = await fetch(`${config().functionsUrl}/realtime/sse?${q}`, {
              headers,
              signal: controller.signal,
            });
            if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
            const parser = createParser({
              onEvent(ev) {
                if (ev.id) lastId = ev.id;
                if (ev.event === "ready") {
                  attempt = 0;
                  status("live");
                } else if (ev.event === "message" || !ev.event) {
                  onMessage(JSON.parse(ev.data) as RealtimeMessage);
                }
              },
            });
            const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              parser.feed(value);
            }
          } catch {
            if (controller.signal.aborted) break;
            status("error");
          }
          attempt += 1;
          await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 10_000)));
        }
        status("closed");
      }
      void connect();
      return () => controller.abort();
    },
  };
}
