/**
 * crds/types.ts and the CRD manifests describe the same API twice (TypeScript for our code, OpenAPI for the
 * API server); this test fails when they drift. It reads the interfaces with the TypeScript compiler (no
 * hand-kept list of fields) and walks the schema beside them: every property must exist on both sides,
 * with the same optionality, and every property in the schema must have a description.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { loadCrd, type JSONSchema } from './test/test-load';

const typesFile = path.join(__dirname, 'types.ts');
const source = ts.createSourceFile(typesFile, fs.readFileSync(typesFile, 'utf8'), ts.ScriptTarget.ES2022, true);

const interfaces = new Map<string, ts.InterfaceDeclaration>();
const aliases = new Map<string, ts.TypeAliasDeclaration>();
source.forEachChild((n) => {
  if (ts.isInterfaceDeclaration(n)) interfaces.set(n.name.text, n);
  if (ts.isTypeAliasDeclaration(n)) aliases.set(n.name.text, n);
});

interface Mismatch {
  at: string;
  problem: string;
}

/** Compares a TS type (an interface's members or an inline type literal) with an object schema. */
function compareMembers(members: readonly ts.TypeElement[], schema: JSONSchema, at: string, out: Mismatch[]): void {
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const seen = new Set<string>();
  for (const m of members) {
    if (!ts.isPropertySignature(m) || !m.type) continue;
    const name = m.name.getText(source);
    seen.add(name);
    const sub = props[name];
    if (!sub) {
      out.push({ at: `${at}.${name}`, problem: 'in types.ts, missing from the CRD schema' });
      continue;
    }
    if (!sub.description) out.push({ at: `${at}.${name}`, problem: 'has no description in the CRD' });
    const optional = m.questionToken !== undefined;
    if (optional === required.has(name)) {
      out.push({ at: `${at}.${name}`, problem: `optional in types.ts is ${optional}, but the CRD says required=${required.has(name)}` });
    }
    compareType(m.type, sub, `${at}.${name}`, out);
  }
  for (const name of Object.keys(props)) {
    if (!seen.has(name)) out.push({ at: `${at}.${name}`, problem: 'in the CRD schema, missing from types.ts' });
  }
}

function compareType(type: ts.TypeNode, schema: JSONSchema, at: string, out: Mismatch[]): void {
  if (ts.isArrayTypeNode(type)) {
    if (schema.type !== 'array' || !schema.items) return void out.push({ at, problem: `array in types.ts, ${schema.type} in the CRD` });
    return compareType(type.elementType, schema.items, `${at}[]`, out);
  }
  if (ts.isTypeLiteralNode(type)) {
    if (schema.type !== 'object') return void out.push({ at, problem: `object in types.ts, ${schema.type} in the CRD` });
    return compareMembers(type.members, schema, at, out);
  }
  if (ts.isTypeReferenceNode(type)) {
    const name = type.typeName.getText(source);
    const iface = interfaces.get(name);
    if (iface) {
      if (schema.type !== 'object') return void out.push({ at, problem: `${name} in types.ts, ${schema.type} in the CRD` });
      return compareMembers(iface.members, schema, at, out);
    }
    const alias = aliases.get(name);
    if (alias) return compareType(alias.type, schema, at, out);
    return void out.push({ at, problem: `unknown type ${name}` });
  }
  if (ts.isUnionTypeNode(type) && type.types.every((t) => ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal))) {
    const values = type.types.map((t) => ((t as ts.LiteralTypeNode).literal as ts.StringLiteral).text).sort();
    const enumValues = [...(schema.enum ?? [])].map(String).sort();
    if (schema.type !== 'string' || JSON.stringify(values) !== JSON.stringify(enumValues)) {
      out.push({ at, problem: `enum ${values.join('|')} in types.ts, ${enumValues.join('|') || schema.type} in the CRD` });
    }
    return;
  }
  const kind = type.kind;
  const expected =
    kind === ts.SyntaxKind.StringKeyword ? ['string'] : kind === ts.SyntaxKind.NumberKeyword ? ['integer', 'number'] : kind === ts.SyntaxKind.BooleanKeyword ? ['boolean'] : undefined;
  if (!expected) return void out.push({ at, problem: `type ${type.getText(source)} is not handled by this test` });
  if (!expected.includes(String(schema.type))) out.push({ at, problem: `${type.getText(source)} in types.ts, ${schema.type} in the CRD` });
}

function mismatches(crdFile: string, specType: string, statusType: string): Mismatch[] {
  const root = loadCrd(crdFile).spec.versions[0].schema.openAPIV3Schema;
  const out: Mismatch[] = [];
  compareMembers(interfaces.get(specType)!.members, root.properties!.spec, 'spec', out);
  compareMembers(interfaces.get(statusType)!.members, root.properties!.status, 'status', out);
  return out;
}

describe('CRD schemas agree with crds/types.ts', () => {
  test('Checkpoint', () => {
    expect(mismatches('cryopod.io_checkpoints.yaml', 'CheckpointSpec', 'CheckpointStatus')).toEqual([]);
  });
  test('Restore', () => {
    expect(mismatches('cryopod.io_restores.yaml', 'RestoreSpec', 'RestoreStatus')).toEqual([]);
  });
  test('the comparison itself finds a drift (a field only in types.ts)', () => {
    const crd = loadCrd('cryopod.io_checkpoints.yaml').spec.versions[0].schema.openAPIV3Schema;
    const spec = structuredClone(crd.properties!.spec);
    delete spec.properties!.retainImages;
    const out: Mismatch[] = [];
    compareMembers(interfaces.get('CheckpointSpec')!.members, spec, 'spec', out);
    expect(out).toEqual([{ at: 'spec.retainImages', problem: 'in types.ts, missing from the CRD schema' }]);
  });
  test('defaults the API server applies', () => {
    const spec = loadCrd('cryopod.io_checkpoints.yaml').spec.versions[0].schema.openAPIV3Schema.properties!.spec;
    expect(spec.properties!.leaveRunning.default).toBe(true);
    expect(spec.properties!.storageLocation.default).toBe('default');
    expect(spec.properties!.timeoutSeconds.default).toBe(300);
    expect(spec.required).toEqual(['podName']);
  });
});
