/** Sign-in with the admin token: checked against the API first, stored in sessionStorage only then. */
import { useState } from 'preact/hooks';
import { verifyToken } from '../api';
import { ErrorMessage } from '../components/common';
import { storeToken } from '../session';

export function SignIn({ onSignedIn, notice }: { onSignedIn: () => void; notice: unknown }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(notice);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await verifyToken(token);
      storeToken(token);
      setToken('');
      onSignedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <h1>LLM Server console</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label for="admin-token">Admin token</label>
        <input
          id="admin-token"
          name="admin-token"
          type="password"
          autocomplete="off"
          required
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <small class="help">
          ADMIN_TOKEN of the server (or the file data/admin-token). Kept in this tab only, until you sign out or close
          it.
        </small>
        <ErrorMessage error={error} />
        <button type="submit" class="primary" disabled={busy || token === ''}>
          Sign in
        </button>
      </form>
    </main>
  );
}
