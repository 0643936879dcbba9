import type { ReactNode } from "react";
import type { AsyncState } from "./useAsync";

export function Loading({ what }: { what: string }) {
  return (
    <div className="state loading" data-state="loading" role="status">
      Loading {what}…
    </div>
  );
}

export function ErrorBox({ error, retry }: { error: Error; retry?: () => void }) {
  return (
    <div className="state error" data-state="error" role="alert">
      <strong>Could not load this.</strong> {error.message}
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <div className="state empty" data-state="empty">
      {children}
    </div>
  );
}

/** Loading, error and empty states around whatever a section shows. */
export function Async<T>({
  state,
  what,
  isEmpty,
  empty,
  children,
}: {
  state: AsyncState<T>;
  what: string;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  children: (data: T) => ReactNode;
}) {
  if (state.error) return <ErrorBox error={state.error} retry={state.reload} />;
  if (state.data === undefined) return <Loading what={what} />;
  if (isEmpty?.(state.data)) return <Empty>{empty ?? `No ${what} yet.`}</Empty>;
  return <>{children(state.data)}</>;
}
