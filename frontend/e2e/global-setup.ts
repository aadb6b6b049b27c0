import { resetScreenshots } from './harness';

/** Once per e2e run: the screenshot folder shows this run only. */
export default async function setup(): Promise<void> {
  await resetScreenshots();
}
