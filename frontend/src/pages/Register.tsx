import { useRef, useState, type SubmitEvent } from 'react';
import { useBaton } from '@baton/client/react';
import { Field, FormError, Page } from '../components';
import { describeError } from '../messages';
import { ApiError } from '@baton/client';
import { Link, navigate } from '../router';
import { validateCredentials, type FieldErrors } from '../validation';

export function RegisterPage() {
  const client = useBaton();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  async function onSubmit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const errors = validateCredentials({ email, password }, true);
    setFieldErrors(errors);
    setError(null);
    if (Object.keys(errors).length > 0) {
      form.current?.querySelector<HTMLInputElement>('[aria-invalid="true"]')?.focus();
      return;
    }
    setBusy(true);
    try {
      const user = await client.register({ email: email.trim(), password });
      navigate('/login', { notice: `Account created for ${user.email}. You can log in now.` });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'email_taken') setFieldErrors({ email: 'This email is already registered.' });
      setError(describeError(e));
      setBusy(false);
    }
  }

  return (
    <Page title="Create an account">
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
          autoComplete="new-password"
          hint="8 to 128 characters."
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={fieldErrors.password}
          required
        />
        <button type="submit" disabled={busy}>
          {busy ? 'Creating account…' : 'Create account'}
        </button>
      </form>
      <p>
        Already registered? <Link to="/login">Log in</Link>.
      </p>
    </Page>
  );
}
