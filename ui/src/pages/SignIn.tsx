/** Sign-in with the server's key pair, the one the AWS CLI and SDKs sign their requests with. */
import { useState, type FormEvent } from 'react';
import type { SessionInfo, SessionRequest } from '../../../src/server/ui/types.js';
import { api } from '../api.js';

export function SignInPage({
  onSignedIn,
  notice,
}: {
  onSignedIn: (s: SessionInfo) => void;
  notice?: string;
}) {
  const [accessKeyId, setAccessKeyId] = useState('');
  const [secretAccessKey, setSecretAccessKey] = useState('');
  const [error, setError] = useState<string | undefined>(notice);
  const [busy, setBusy] = useState(false);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const body: SessionRequest = {
      accessKeyId: accessKeyId.trim(),
      secretAccessKey: secretAccessKey.trim(),
    };
    api<SessionInfo>('/session', { method: 'POST', body }).then(
      (s) => {
        setBusy(false);
        if (s.signedIn) onSignedIn(s);
        else setError('The server did not sign you in.');
      },
      (err: Error) => {
        setBusy(false);
        setError(err.message);
      },
    );
  };

  return (
    <div className="signin">
      <form className="signin-card" onSubmit={submit}>
        <h1>
          <span className="brand">Strand</span> dashboard
        </h1>
        <p className="muted">Sign in with the access key pair of this server.</p>
        <label>
          Access key ID
          <input
            name="accessKeyId"
            autoComplete="username"
            spellCheck={false}
            required
            value={accessKeyId}
            onChange={(e) => setAccessKeyId(e.target.value)}
          />
        </label>
        <label>
          Secret access key
          <input
            name="secretAccessKey"
            type="password"
            autoComplete="current-password"
            required
            value={secretAccessKey}
            onChange={(e) => setSecretAccessKey(e.target.value)}
          />
        </label>
        {error && (
          <div className="error-box" role="alert">
            {error}
          </div>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <div className="hint">
          <p>
            <code>strand server</code> wrote the keys to <code>$STRAND_HOME/credentials</code> (
            <code>.strand/credentials</code> by default) on its first start, under the profile{' '}
            <code>[strand]</code>:
          </p>
          <pre className="code">
            {
              '[strand]\naws_access_key_id = …      ← Access key ID\naws_secret_access_key = …  ← Secret access key'
            }
          </pre>
          <p>
            The same keys sign requests of the AWS CLI and SDKs (
            <code>AWS_SHARED_CREDENTIALS_FILE=.strand/credentials AWS_PROFILE=strand</code>).
          </p>
        </div>
      </form>
    </div>
  );
}
