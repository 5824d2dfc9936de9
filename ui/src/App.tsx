/**
 * The dashboard: signed out, the sign-in page (whatever the address, so that after signing in
 * the page asked for is shown); signed in, the pages under one bar, with live updates.
 */
import { useCallback, useEffect, useState } from 'react';
import { BrowserRouter, NavLink, Route, Routes } from 'react-router';
import type { SessionInfo } from '../../src/server/ui/types.js';
import { api, onSignedOut } from './api.js';
import { LiveProvider, useLiveConnected } from './live.js';
import { BatchPage } from './pages/Batch.js';
import { ExecutionPage } from './pages/Execution.js';
import { ExecutionsPage } from './pages/Executions.js';
import { JobPage } from './pages/Job.js';
import { NotFoundPage } from './pages/NotFound.js';
import { ResultsPage } from './pages/Results.js';
import { SignInPage } from './pages/SignIn.js';
import { StartPage } from './pages/Start.js';

export function App() {
  const [session, setSession] = useState<SessionInfo | undefined>(undefined);
  const [failure, setFailure] = useState<string | undefined>(undefined);

  useEffect(() => {
    api<SessionInfo>('/session').then(setSession, (err: Error) => {
      setFailure(err.message);
      setSession({ signedIn: false });
    });
    return onSignedOut(() => setSession({ signedIn: false }));
  }, []);

  const signOut = useCallback(() => {
    api<SessionInfo>('/session', { method: 'DELETE' }).then(
      () => setSession({ signedIn: false }),
      () => setSession({ signedIn: false }),
    );
  }, []);

  if (session === undefined) return <div className="loading-page">Loading…</div>;
  return (
    <BrowserRouter basename="/ui">
      {session.signedIn ? (
        <LiveProvider>
          <Shell session={session} onSignOut={signOut} />
        </LiveProvider>
      ) : (
        <SignInPage
          notice={failure}
          onSignedIn={(s) => {
            setFailure(undefined);
            setSession(s);
          }}
        />
      )}
    </BrowserRouter>
  );
}

function Shell({ session, onSignOut }: { session: SessionInfo; onSignOut: () => void }) {
  const connected = useLiveConnected();
  return (
    <div className="app">
      <nav className="topbar">
        <span className="brand">Strand</span>
        <NavLink to="/" end>
          Executions
        </NavLink>
        <NavLink to="/start">Start a run</NavLink>
        <NavLink to="/results">Results</NavLink>
        <NavLink to="/batch">Batch</NavLink>
        <span className="spacer" />
        <span
          className={`live ${connected ? 'on' : 'off'}`}
          title={
            connected ? 'Live: pages update as things happen' : 'Reconnecting to live updates…'
          }
        >
          {connected ? '● live' : '○ offline'}
        </span>
        {session.home && (
          <span
            className="home"
            title={
              session.owner
                ? 'This server schedules the home'
                : 'Another engine schedules the home; this server follows it'
            }
          >
            {session.home}
          </span>
        )}
        <button type="button" className="link-button" onClick={onSignOut}>
          Sign out
        </button>
      </nav>
      <main className="content">
        <Routes>
          <Route path="/" element={<ExecutionsPage />} />
          <Route path="/executions" element={<ExecutionsPage />} />
          <Route path="/executions/:name" element={<ExecutionPage />} />
          <Route path="/jobs/:id" element={<JobPage />} />
          <Route path="/results" element={<ResultsPage />} />
          <Route path="/batch" element={<BatchPage />} />
          <Route path="/start" element={<StartPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Routes>
      </main>
    </div>
  );
}
