import { useEffect, useState, type FormEvent } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { exchangeCode, signInWithSupabase } from "../auth";
import { config } from "../config";

export function SignIn() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const next = params.get("next") || "/overview";
  const code = params.get("code");
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const local = config().mode === "local";

  useEffect(() => {
    if (!code) return;
    setBusy(true);
    exchangeCode(code).then(
      () => navigate(next, { replace: true }),
      (exc: Error) => {
        setBusy(false);
        setError(exc.message);
      },
    );
  }, [code, next, navigate]);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setError(null);
    setBusy(true);
    try {
      const sent = await signInWithSupabase(String(form.get("email")), String(form.get("password") || "") || null);
      if (sent) setNote(sent);
      else navigate(next, { replace: true });
    } catch (exc) {
      setError((exc as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="signin">
      <h1>TokenTRA</h1>
      {busy && <p data-state="loading">Signing in…</p>}
      {error && (
        <p className="state error" role="alert">
          {error}
        </p>
      )}
      {note && <p className="state empty">{note}</p>}
      {local ? (
        <div>
          <p>This is the local development stack: there is no password sign-in. Run</p>
          <pre>tokentra users login you@example.com</pre>
          <p>and open the link it prints (it works once, for a few minutes).</p>
        </div>
      ) : (
        <form onSubmit={submit}>
          <label>
            Email <input name="email" type="email" required autoComplete="email" />
          </label>
          <label>
            Password <input name="password" type="password" autoComplete="current-password" placeholder="empty: email me a link" />
          </label>
          <button type="submit" disabled={busy}>
            Sign in
          </button>
        </form>
      )}
    </div>
  );
}
