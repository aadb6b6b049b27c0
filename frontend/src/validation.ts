export interface Credentials {
  email: string;
  password: string;
}

export type FieldErrors = Partial<Record<keyof Credentials, string>>;

const EMAIL = /^[^\s@]+@[^\s@]+$/;

/** Mirrors the server's rules (password 8..=128 Unicode scalar values) for early feedback;
 *  the server stays the judge. */
export function validateCredentials({ email, password }: Credentials, forRegistration: boolean): FieldErrors {
  const errors: FieldErrors = {};
  if (email.trim() === '') errors.email = 'Enter your email address.';
  else if (!EMAIL.test(email.trim())) errors.email = 'Enter an email address like name@example.com.';
  // Unicode scalar values, as the server counts them (not UTF-16 units, not graphemes)
  // eslint-disable-next-line @typescript-eslint/no-misused-spread
  const length = [...password].length;
  if (length === 0) errors.password = 'Enter your password.';
  else if (forRegistration && length < 8) errors.password = 'Use at least 8 characters.';
  else if (forRegistration && length > 128) errors.password = 'Use at most 128 characters.';
  return errors;
}
