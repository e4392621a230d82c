/**
 * Reads the CRD manifests of crds/, for tests only (test-*.ts is outside the tsc build: the operator never
 * needs YAML at run time).
 * js-yaml comes with the test toolchain; the CRDs use plain YAML only (no anchors, no tags).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';

export interface JSONSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JSONSchema>;
  items?: JSONSchema;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  'x-kubernetes-validations'?: Array<{ rule: string; message?: string }>;
}

export interface Crd {
  apiVersion: string;
  kind: 'CustomResourceDefinition';
  metadata: { name: string };
  spec: { group: string; versions: Array<{ name: string; schema: { openAPIV3Schema: JSONSchema } }> };
}

export const CRD_DIR = path.join(__dirname, '..');
export const CRD_FILES = ['cryopod.io_checkpoints.yaml', 'cryopod.io_restores.yaml'];

export function loadCrd(file: string): Crd {
  return yaml.load(fs.readFileSync(path.join(CRD_DIR, file), 'utf8')) as Crd;
}
