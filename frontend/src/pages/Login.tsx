import { useRef, useState, type SubmitEvent } from 'react';
import { useBaton } from '@baton/client/react';
import { Field, FormError, Notice, Page } from '../components';
import { describeError } from '../messages';
import { Link, navigate, safeNext, useLocation } from '../router';
import { validateCredentials, type FieldErrors } from '../validation';

export function LoginPage() {
  const client = useBaton();
  const { search, notice } = useLocation();
  const next = safeNext(search.get('next'));
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  async function onSubmit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const errors = validateCredentials({ email, password }, false);
    setFieldErrors(errors);
    setError(null);
    if (Object.keys(errors).length > 0) {
      form.current?.querySelector<HTMLInputElement>('[aria-invalid="true"]')?.focus();
      return;
    }
    setBusy(true);
    try {
      await client.login({ email: email.trim(), password });
      navigate(next ?? '/profile', { replace: true });
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  }

  return (
    <Page title="Log in">
      {notice ? <Notice>{notice}</Notice> : null}
      <FormError message={error} />
      <form ref={form} onSubmit={(e) => void onSubmit(e)} noValidate aria-busy={busy}>
        <Field
          label="Email"
          type="email"
          name="email"
          autoComplete="username"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={fieldErrors.email}
          required
        />
        <Field
          label="Password"
          type="password"
          name="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={fieldErrors.password}
          required
        />
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
      <p>
        No account yet? <Link to="/register">Create one</Link>.
      </p>
    </Page>
  );
}
