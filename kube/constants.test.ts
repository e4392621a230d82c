/** The constants against the two other places that state them: the CRDs' defaults and the reasons in docs/operations.md. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CRD_FILES, loadCrd } from '../crds/test/test-load';
import { DEFAULT_TIMEOUT_SECONDS, Reason } from './constants';

test('the CRDs default spec.timeoutSeconds to DEFAULT_TIMEOUT_SECONDS', () => {
  for (const file of CRD_FILES) {
    const spec = loadCrd(file).spec.versions[0].schema.openAPIV3Schema.properties!.spec;
    expect({ file, default: spec.properties!.timeoutSeconds.default }).toEqual({ file, default: DEFAULT_TIMEOUT_SECONDS });
  }
});

test('docs/operations.md lists every reason, and no other', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'operations.md'), 'utf8');
  const table = doc.slice(doc.indexOf('| reason | what happened | what to do |'));
  const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
  const documented = rows.flatMap((row) => [...row.split('|')[1].matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]));
  expect(documented.sort()).toEqual(Object.values(Reason).sort());
});
