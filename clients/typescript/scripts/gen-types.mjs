// Generates src/schema.ts (the API's types) from the committed OpenAPI document, and checks that
// the package version follows the document's info.version.
//   node scripts/gen-types.mjs           write src/schema.ts
//   node scripts/gen-types.mjs --check   fail, with a diff, when src/schema.ts is stale or the
//                                        package version is not the document's info.version
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const specPath = resolve(pkgDir, '../../openapi/openapi.json');
const outPath = join(pkgDir, 'src/schema.ts');
const header =
  '// Generated from openapi/openapi.json by scripts/gen-types.mjs (openapi-typescript). Do not edit:\n' +
  '// run `npm run gen -w @baton/client` (or scripts/gen-client) after the document changes.\n';

const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const generated = header + astToString(await openapiTS(spec));

const mode = process.argv[2];
if (mode === undefined) {
  writeFileSync(outPath, generated);
  console.log(`gen-types: wrote ${outPath}`);
} else if (mode === '--check') {
  let failed = false;
  const committed = readFileSync(outPath, 'utf8');
  if (committed !== generated) {
    const tmp = mkdtempSync(join(tmpdir(), 'gen-types-'));
    writeFileSync(join(tmp, 'schema.ts'), generated);
    spawnSync('diff', ['-u', '--label', 'committed src/schema.ts', '--label', 'generated from openapi/openapi.json', outPath, join(tmp, 'schema.ts')], { stdio: 'inherit' });
    rmSync(tmp, { recursive: true, force: true });
    console.error('gen-types: clients/typescript/src/schema.ts is stale; run `npm run gen -w @baton/client` and commit it');
    failed = true;
  }
  const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
  if (version !== spec.info.version) {
    console.error(`gen-types: package version ${version} is not the document's info.version ${spec.info.version}`);
    failed = true;
  }
  if (failed) process.exit(1);
  console.log(`gen-types: src/schema.ts is up to date; version ${version} = info.version`);
} else {
  console.error('usage: node scripts/gen-types.mjs [--check]');
  process.exit(2);
}
