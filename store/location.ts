/**
 * Where images live, as a URL: `file:///abs/path` (a shared filesystem: RWX PVC, NFS, hostPath) or
 * `s3://bucket/prefix` (any S3-compatible store). A checkpoint inside a location is named by a key of
 * one or more plain segments (`namespace/name-uid` for the operator and agent, one name for the CLI), so
 * the URL of one checkpoint is the location URL + '/' + key.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError } from './errors';

export type Location = { kind: 'file'; root: string; url: string } | { kind: 's3'; bucket: string; prefix: string; url: string };

// A segment becomes a directory name or a part of an object key: no separators, no dot-only names, no
// leading dot (the store's own temp names start with one), nothing a shell or a URL would mangle.
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$/;
// S3's bucket naming rules (lower case, 3..63, no leading/trailing dot or dash).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function checkKey(key: string): string {
  const parts = key.split('/');
  if (key === '' || parts.some((p) => !SEGMENT.test(p) || /^\.+$/.test(p))) {
    throw new StoreError('BadLocation', `checkpoint key ${JSON.stringify(key)} is not one or more plain names joined by '/'`);
  }
  return key;
}

export function parseLocation(url: string): Location {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new StoreError('BadLocation', `storage location ${JSON.stringify(url)} is not a URL (expected file:///path or s3://bucket/prefix)`, { cause: err });
  }
  if (u.search || u.hash || u.username || u.password) {
    // Credentials never travel in a location (it is copied into statuses and logs).
    throw new StoreError('BadLocation', `storage location ${url} has a query, fragment or user info: give credentials separately`);
  }
  if (u.protocol === 'file:') {
    if (u.hostname && u.hostname !== 'localhost') throw new StoreError('BadLocation', `storage location ${url} names a remote host`);
    const root = path.resolve(fileURLToPath(u));
    if (root === '/') throw new StoreError('BadLocation', `storage location ${url} is the filesystem root`);
    return { kind: 'file', root, url: `file://${root}` };
  }
  if (u.protocol === 's3:') {
    const bucket = u.hostname;
    if (!BUCKET.test(bucket)) throw new StoreError('BadLocation', `storage location ${url}: ${JSON.stringify(bucket)} is not a valid bucket name`);
    const prefix = decodeURIComponent(u.pathname).replace(/^\/+|\/+$/g, '');
    if (prefix !== '') checkKey(prefix);
    return { kind: 's3', bucket, prefix, url: `s3://${bucket}${prefix ? `/${prefix}` : ''}` };
  }
  throw new StoreError('BadLocation', `storage location ${url}: scheme ${u.protocol} is not supported (file:// or s3://)`);
}

/**
 * Splits the URL of one checkpoint (what the CLI is given: `s3://bucket/dir/name`) into the location
 * and the key (its last segment).
 */
export function splitCheckpointUrl(url: string): { location: string; key: string } {
  const trimmed = url.replace(/\/+$/, '');
  const cut = trimmed.lastIndexOf('/');
  const location = trimmed.slice(0, cut);
  const key = checkKey(decodeURIComponent(trimmed.slice(cut + 1)));
  if (/^[a-z0-9]+:\/*$/.test(location)) throw new StoreError('BadLocation', `${url} names no checkpoint inside a location (expected …/NAME)`);
  parseLocation(location);
  return { location, key };
}
