/**
 * One upload in a fresh process, through the calls the node agent makes (node-agent/remote-store.ts:
 * the store and keys from a mounted Secret directory, storeSecretsFromDir + openStore with its defaults,
 * then publishCheckpoint), so its memory is the uploader's alone:
 *   node dist/bench/upload-once.js <dir> <store url> <key> <secret dir>
 * Prints JSON: seconds, bytes, peak RSS (VmHWM, KiB). The parent samples /proc/PID/status meanwhile.
 */
import * as fs from 'node:fs';
import { openStore, publishCheckpoint, storeSecretsFromDir } from '../store';

function statusKiB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  const [dir, url, key, secretDir] = process.argv.slice(2);
  const secrets = storeSecretsFromDir(secretDir);
  const store = openStore(url, secrets.options);
  const t0 = process.hrtime.bigint();
  const { bytes } = await publishCheckpoint(store, key, dir, { signingKey: secrets.signingKey, onProgress: () => undefined });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(JSON.stringify({ seconds, bytes, peakKiB: statusKiB('VmHWM') }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`upload-once: ${(err as Error).message}\n`);
  process.exit(1);
});
