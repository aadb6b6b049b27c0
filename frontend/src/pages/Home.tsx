import { useSession } from '@baton/client/react';
import { Page } from '../components';
import { Link } from '../router';

export function HomePage() {
  const state = useSession();
  return (
    <Page title="Baton">
      <p>
        Short-lived access tokens held in memory, rotating refresh tokens in an HttpOnly cookie, and a list of
        every device you are logged in on.
      </p>
      {state === 'authenticated' ? (
        <ul className="actions">
          <li>
            <Link to="/profile">Your profile</Link>
          </li>
          <li>
            <Link to="/sessions">Your sessions</Link>
          </li>
        </ul>
      ) : (
        <ul className="actions">
          <li>
            <Link to="/login">Log in</Link>
          </li>
          <li>
            <Link to="/register">Create an account</Link>
          </li>
        </ul>
      )}
      <p>
        Integrating? Read the <a href="/docs">API reference</a>.
      </p>
    </Page>
  );
}

export function NotFoundPage() {
  return (
    <Page title="Page not found">
      <p>
        There is nothing here. Go to the <Link to="/">start page</Link>.
      </p>
    </Page>
  );
}
