import { useCallback, useEffect, useRef, useState } from "react";

export interface AsyncState<T> {
  data: T | undefined;
  error: Error | null;
  loading: boolean;
  reload: () => void;
}

/** Run fn when deps change (and on reload()); the newest call wins, older answers are dropped. */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error | null>(null);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const run = useCallback(
    (quiet: boolean) => {
      const mine = ++seq.current;
      if (!quiet) setLoading(true);
      fn().then(
        (value) => {
          if (mine !== seq.current) return;
          setData(value);
          setError(null);
          setLoading(false);
        },
        (exc: unknown) => {
          if (mine !== seq.current) return;
          setError(exc instanceof Error ? exc : new Error(String(exc)));
          setLoading(false);
        },
      );
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    deps,
  );
  useEffect(() => {
    setData(undefined);
    run(false);
  }, [run]);
  // A reload keeps what is shown until the new answer arrives (live updates must not flash).
  return { data, error, loading, reload: () => run(true) };
}
