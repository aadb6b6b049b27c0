// Prints the size of the API client (src/api, with openapi-fetch) as shipped: minified + gzip.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';

async function size(external) {
  const out = await build({
    entryPoints: ['src/api/index.ts'],
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

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const all = await size([]);
const own = await size(['openapi-fetch']);
console.log(`client (src/api + openapi-fetch): ${kb(all.min)} min, ${kb(all.gzip)} min+gzip`);
console.log(`  of which the session layer alone: ${kb(own.min)} min, ${kb(own.gzip)} min+gzip`);
