/**
 * The one way to get an image store: by location URL (location.ts), with keys and credentials given
 * by the caller (a Kubernetes Secret in the agent and operator, env or flags in the CLI).
 */
import { FileImageStore } from './fs-store';
import type { ImageStore, StoreOptions } from './image-store';
import { parseLocation } from './location';
import { S3ImageStore } from './s3-store';

export function openStore(url: string, opts: StoreOptions = {}): ImageStore {
  const loc = parseLocation(url);
  if (loc.kind === 'file') return new FileImageStore(loc.root, opts);
  return new S3ImageStore(loc.bucket, loc.prefix, opts);
}
