// Prints what the package costs an app, as shipped (dist/, minified ESM, gzip -9), and fails when
// the core is over its budget. Run after `npm run build`.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BUDGET_GZIP = 5 * 1024; // the core (session layer), without openapi-fetch
const dist = join(dirname(fileURLToPath(import.meta.url)), '../dist');

async function size(entry, external) {
  const out = await build({
    entryPoints: [join(dist, entry)],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external,
    write: false,
    logLevel: 'error',
  });
  const bytes = out.outputFiles[0].contents;
  return { min: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

const kib = (n) => `${(n / 1024).toFixed(2)} KiB`;
const rows = [
  ['core (@baton/client, openapi-fetch external)', await size('index.js', ['openapi-fetch'])],
  ['core with openapi-fetch', await size('index.js', [])],
  ['React binding (@baton/client/react; react and the core external)', await size('react.js', ['react', './client.js'])],
  
];
for (const [name, s] of rows) console.log(`size: ${name}: ${kib(s.min)} min, ${kib(s.gzip)} min+gzip`);
const core = rows[0][1].gzip;
if (core > BUDGET_GZIP) {
  console.error(`size: the core is ${kib(core)} min+gzip, over its budget of ${kib(BUDGET_GZIP)}`);
  process.exit(1);
}
console.log(`size: core within its budget (${kib(core)} of ${kib(BUDGET_GZIP)} min+gzip)`);
