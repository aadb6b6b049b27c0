import { useCallback, useEffect, useState } from 'react';
import { ApiError, type User } from '@baton/client';
import { useBaton } from '@baton/client/react';
import { FormError, Page } from '../components';
import { describeError, formatDate } from '../messages';

export function ProfilePage() {
  const client = useBaton();
  const [user, setUser] = useState<User | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);

  const load = useCallback(
    async (isActive: () => boolean) => {
      setLoading(true);
      setError(null);
      try {
        const me = await client.me();
        if (isActive()) setUser(me);
      } catch (e) {
        // An expired session is shown by the app shell; everything else here.
        if (isActive() && !(e instanceof ApiError && e.sessionExpired)) setError(describeError(e));
      } finally {
        if (isActive()) setLoading(false);
      }
    },
    [client],
  );

  useEffect(() => {
    let active = true;
    void load(() => active);
    return () => {
      active = false;
    };
  }, [load]);

  return (
    <Page title="Your profile">
      <FormError message={error} />
      {user ? (
        <dl className="details" aria-busy={loading}>
          <dt>Email</dt>
          <dd data-testid="profile-email">{user.email}</dd>
          <dt>Account id</dt>
          <dd>
            <code>{user.id}</code>
          </dd>
          <dt>Member since</dt>
          <dd>
            <time dateTime={user.created_at}>{formatDate(user.created_at)}</time>
          </dd>
        </dl>
      ) : loading ? (
        <p role="status">Loading your profile…</p>
      ) : null}
      <button type="button" onClick={() => void load(() => true)} disabled={loading}>
        Reload profile
      </button>
    </Page>
  );
}
