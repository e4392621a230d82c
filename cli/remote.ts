/**
 * `cryopod dump --to URL` and `cryopod restore --from URL`: a checkpoint in an image store (file:// or
 * s3://, store/) instead of a local directory. Credentials and keys come from the environment
 * (store/credentials.ts: AWS_ACCESS_KEY_ID, CRYOPOD_SIGNING_KEY, ...), never from the command line,
 * where other users could read them in /proc.
 *
 * dump: into a private temp directory, then seal (signed with CRYOPOD_SIGNING_KEY) and upload; the temp
 * copy is removed only once the upload is confirmed (kept, and named, when it fails).
 * restore: download into a private temp directory and verify the seal (signature, every file's size and
 * sha256) before the checkpoint library reads a byte of it: a refused checkpoint morphs no stub and runs
 * nothing. --insecure-unsigned accepts an unsigned checkpoint (never a wrongly signed one).
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostMismatch } from '../images/host';
import { fetchCheckpoint, openStore, publishCheckpoint, splitCheckpointUrl, storeSecretsFromEnv, type Progress } from '../store';
import { CliError } from './errors';

/** A progress bar on a terminal, nothing otherwise (logs and pipes stay clean). */
export function progressBar(stream: NodeJS.WriteStream, verb: string): ((p: Progress) => void) | undefined {
  if (!stream.isTTY) return undefined;
  return (p) => {
    const frac = p.totalBytes ? p.doneBytes / p.totalBytes : 1;
    const width = 30;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    stream.write(`\r${verb} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${(p.doneBytes / 1048576).toFixed(0)}/${(p.totalBytes / 1048576).toFixed(0)} MiB${frac >= 1 ? '\n' : ''}`);
  };
}

async function privateTemp(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'cryopod-'));
}

export async function dumpTo(url: string, dump: (dir: string) => Promise<unknown>, err: NodeJS.WriteStream): Promise<{ url: string; bytes: number }> {
  const { location, key } = splitCheckpointUrl(url);
  const secrets = storeSecretsFromEnv();
  const store = openStore(location, secrets.options);
  const dir = await privateTemp();
  await dump(dir);
  try {
    const r = await publishCheckpoint(store, key, dir, { signingKey: secrets.signingKey, onProgress: progressBar(err, 'upload') });
    if (!secrets.signingKey) err.write('warning: CRYOPOD_SIGNING_KEY is not set: the checkpoint is unsigned, and a restore refuses it unless told --insecure-unsigned\n');
    await fsp.rm(dir, { recursive: true, force: true });
    return r;
  } catch (e) {
    throw new CliError('EUPLOAD', `upload to ${url} failed; the images are kept in ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

export async function restoreFrom<T>(url: string, opts: { allowUnsigned: boolean }, restore: (dir: string, signed: boolean) => Promise<T>, err: NodeJS.WriteStream): Promise<T> {
  const { location, key } = splitCheckpointUrl(url);
  const secrets = storeSecretsFromEnv();
  const store = openStore(location, secrets.options);
  const dir = path.join(await privateTemp(), 'checkpoint');
  try {
    const seal = await fetchCheckpoint(store, key, dir, { trusted: secrets.trustedKeys, allowUnsigned: opts.allowUnsigned, onProgress: progressBar(err, 'download') });
    for (const why of hostMismatch(seal.host)) err.write(`warning: ${why}\n`);
    return await restore(dir, seal.signature !== undefined);
  } finally {
    await fsp.rm(path.dirname(dir), { recursive: true, force: true });
  }
}
