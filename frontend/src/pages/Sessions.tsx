import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, type Session } from '@baton/client';
import { useBaton } from '@baton/client/react';
import { FormError, Page } from '../components';
import { describeError, deviceName, formatDate } from '../messages';
import { navigate } from '../router';

function device(session: Session): string {
  return deviceName(session.user_agent);
}

export function SessionsPage() {
  const client = useBaton();
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const statusRef = useRef<HTMLParagraphElement>(null);

  const fail = useCallback((e: unknown) => {
    if (!(e instanceof ApiError && e.sessionExpired)) setError(describeError(e));
  }, []);

  const load = useCallback(
    async (isActive: () => boolean = () => true) => {
      try {
        const list = await client.listSessions();
        if (isActive()) setSessions(list);
      } catch (e) {
        if (isActive()) fail(e);
      }
    },
    [client, fail],
  );

  useEffect(() => {
    let active = true;
    void load(() => active);
    return () => {
      active = false;
    };
  }, [load]);

  useEffect(() => {
    if (status !== null) statusRef.current?.focus();
  }, [status]);

  async function revoke(session: Session) {
    setBusy(session.id);
    setError(null);
    setStatus(null);
    try {
      await client.revokeSession(session.id);
      if (session.current) {
        await client.logout();
        navigate('/login', { notice: 'This device has been logged out.' });
        return;
      }
      setStatus(`Session on ${device(session)} revoked.`);
      await load();
    } catch (e) {
      fail(e);
      if (e instanceof ApiError && e.code === 'session_not_found') await load();
    } finally {
      setBusy(null);
    }
  }

  async function revokeAll() {
    setBusy('all');
    setError(null);
    try {
      await client.revokeAllSessions();
      navigate('/login', { notice: 'You have been logged out on every device.' });
    } catch (e) {
      fail(e);
      setBusy(null);
    }
  }

  return (
    <Page title="Your sessions">
      <p>Every device where you are logged in. Revoke any you don't recognise.</p>
      <FormError message={error} />
      {status ? (
        <p className="alert alert-info" role="status" tabIndex={-1} ref={statusRef}>
          {status}
        </p>
      ) : null}
      {sessions === null ? (
        <p role="status">Loading your sessions…</p>
      ) : sessions.length === 0 ? (
        <p>No active sessions.</p>
      ) : (
        <table className="sessions">
          <caption className="visually-hidden">Active sessions</caption>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Logged in</th>
              <th scope="col">Last used</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {sessions.map((s) => (
              <tr key={s.id} className={s.current ? 'current' : undefined} data-testid="session-row">
                <th scope="row" data-label="Device">
                  <span className="device">{device(s)}</span>
                  {s.user_agent ? <span className="ua">{s.user_agent}</span> : null}
                  {s.current ? <span className="badge">This device</span> : null}
                </th>
                <td data-label="Logged in">
                  <time dateTime={s.created_at}>{formatDate(s.created_at)}</time>
                </td>
                <td data-label="Last used">
                  <time dateTime={s.last_used_at}>{formatDate(s.last_used_at)}</time>
                </td>
                <td data-label="Expires">
                  <time dateTime={s.expires_at}>{formatDate(s.expires_at)}</time>
                </td>
                <td>
                  <button
                    type="button"
                    className="secondary"
                    onClick={() => void revoke(s)}
                    disabled={busy !== null}
                    aria-label={`Revoke the session on ${s.current ? 'this device' : device(s)}, logged in ${formatDate(s.created_at)}`}
                  >
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="danger-zone">
        <button type="button" className="danger" onClick={() => void revokeAll()} disabled={busy !== null}>
          Log out everywhere
        </button>
      </div>
    </Page>
  );
}
