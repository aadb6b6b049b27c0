import { useEffect, useRef, useState } from 'react';
import { useBaton, useSession } from '@baton/client/react';
import { Notice } from './components';
import { SESSION_EXPIRED_MESSAGE, describeError } from './messages';
import { HomePage, NotFoundPage } from './pages/Home';
import { LoginPage } from './pages/Login';
import { ProfilePage } from './pages/Profile';
import { RegisterPage } from './pages/Register';
import { SessionsPage } from './pages/Sessions';
import { Link, currentPathForReturn, navigate, useLocation } from './router';

function Routes({ path }: { path: string }) {
  switch (path) {
    case '/':
      return <HomePage />;
    case '/login':
      return <LoginPage />;
    case '/register':
      return <RegisterPage />;
    case '/profile':
      return <ProfilePage />;
    case '/sessions':
      return <SessionsPage />;
    default:
      return <NotFoundPage />;
  }
}

/** Shown in place of the page when the refresh was refused. */
function SessionExpired({ from }: { from: string }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = 'Session expired · Baton';
    heading.current?.focus();
  }, []);
  return (
    <section className="page" aria-labelledby="expired-title">
      <h1 id="expired-title" tabIndex={-1} ref={heading}>
        Session expired
      </h1>
      <p className="alert alert-warning" role="alert" data-testid="session-expired">
        {SESSION_EXPIRED_MESSAGE}
      </p>
      <p>
        <Link to={`/login?next=${encodeURIComponent(from)}`} className="button">
          Log in
        </Link>
      </p>
    </section>
  );
}

export function App() {
  const client = useBaton();
  const state = useSession();
  const location = useLocation();
  /** The page the user was on when the session ended; the message shows while they stay there. */
  const [expiredAt, setExpiredAt] = useState<string | null>(null);
  const [restoreError, setRestoreError] = useState<string | null>(null);

  useEffect(() => {
    let active = true;
    // Silent refresh on page load: the cookie survives a reload, the in-memory token does not.
    client.restore().catch((e: unknown) => {
      if (active) setRestoreError(describeError(e));
    });
    const offs = [
      client.on('session-expired', () => setExpiredAt(currentPathForReturn())),
      client.on('login', () => setExpiredAt(null)),
      client.on('refreshed', () => setExpiredAt(null)),
    ];
    return () => {
      active = false;
      offs.forEach((off) => off());
    };
  }, [client]);

  async function logout() {
    await client.logout();
    navigate('/login', { notice: 'You have been logged out.' });
  }

  const here = currentPathForReturn();
  const expired = expiredAt !== null && expiredAt === here;

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <nav aria-label="Main">
          <Link to="/" className="brand">
            Baton
          </Link>
          <ul>
            {state === 'authenticated' ? (
              <>
                <li>
                  <Link to="/profile" aria-current={location.path === '/profile' ? 'page' : undefined}>
                    Profile
                  </Link>
                </li>
                <li>
                  <Link to="/sessions" aria-current={location.path === '/sessions' ? 'page' : undefined}>
                    Sessions
                  </Link>
                </li>
                <li>
                  <button type="button" className="link-button" onClick={() => void logout()}>
                    Log out
                  </button>
                </li>
              </>
            ) : (
              <>
                <li>
                  <Link to="/login" aria-current={location.path === '/login' ? 'page' : undefined}>
                    Log in
                  </Link>
                </li>
                <li>
                  <Link to="/register" aria-current={location.path === '/register' ? 'page' : undefined}>
                    Register
                  </Link>
                </li>
              </>
            )}
          </ul>
        </nav>
      </header>
      <main id="main">
        {restoreError ? <Notice>{restoreError}</Notice> : null}
        {state === 'unknown' ? (
          <p role="status">Restoring your session…</p>
        ) : expired ? (
          <SessionExpired from={expiredAt} />
        ) : (
          <Routes key={location.path} path={location.path} />
        )}
      </main>
    </>
  );
}
