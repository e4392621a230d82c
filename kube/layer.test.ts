/**
 * kube/ is a lower layer: the operator and the agent import it, never the reverse. Its product files may
 * import only each other, crds/ (the API types) and packages; its tests may add testenv/ and crds/test/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const ALLOWED = [/^\.\/[a-z-]+$/, /^\.\.\/crds\/types$/, /^node:/, /^[a-z@]/];
const ALLOWED_IN_TESTS = [/^\.\.\/testenv\/[a-z-]+$/, /^\.\.\/crds\/test\/[a-z-]+$/];

test('kube/ imports nothing from the layers above it', () => {
  const wrong: string[] = [];
  for (const file of fs.readdirSync(__dirname).filter((f) => f.endsWith('.ts'))) {
    const text = fs.readFileSync(path.join(__dirname, file), 'utf8');
    const allowed = file.endsWith('.test.ts') ? [...ALLOWED, ...ALLOWED_IN_TESTS] : ALLOWED;
    for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms)) {
      if (!allowed.some((re) => re.test(m[1]))) wrong.push(`${file}: ${m[1]}`);
    }
  }
  expect(wrong).toEqual([]);
});
