/**
 * One restore from an image store in a fresh process, as `cryopod restore --from URL` does it
 * (cli/remote.ts): download into a private directory, verify the seal, restore the process:
 *   node dist/bench/store-restore-once.js <store url> <key> <secret dir> <work dir>
 * Prints JSON: pid, seconds (until the restored process runs), downloadSeconds (download + seal check).
 */
import * as path from 'node:path';
import { restoreProcess } from '../checkpoint';
import { fetchCheckpoint, openStore, storeSecretsFromDir } from '../store';

async function main(): Promise<void> {
  const [url, key, secretDir, work] = process.argv.slice(2);
  const secrets = storeSecretsFromDir(secretDir);
  const store = openStore(url, secrets.options);
  const dir = path.join(work, 'checkpoint');
  const t0 = process.hrtime.bigint();
  await fetchCheckpoint(store, key, dir, { trusted: secrets.trustedKeys });
  const fetched = process.hrtime.bigint();
  const r = await restoreProcess({ dir });
  const done = process.hrtime.bigint();
  process.stdout.write(JSON.stringify({ pid: r.pid, seconds: Number(done - t0) / 1e9, downloadSeconds: Number(fetched - t0) / 1e9, morphSeconds: r.morphSeconds }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`store-restore-once: ${(err as Error).message}\n`);
  process.exit(1);
});
