/** REST paths of the resources the operator touches (namespace undefined = all namespaces). */
import { API_VERSION } from '../../crds/types';

export type Resource = 'checkpoints' | 'restores';

export function crPath(resource: Resource, namespace?: string, name?: string, sub?: 'status'): string {
  let p = `/apis/${API_VERSION}`;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${resource}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (sub) p += `/${sub}`;
  return p;
}

export function podPath(namespace: string, name?: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods${name ? `/${encodeURIComponent(name)}` : ''}`;
}

export function eventsPath(namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`;
}
