/**
 * Unit tests of the native core's pure logic, written in C++ beside the code (native/src/core/tests) and
 * compiled here with the same compiler as the addon; each test binary exits 0 when it passes.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const core = path.join(__dirname, '..', 'src', 'core');

function buildAndRun(test: string, sources: string[]): string {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-unit-')), test);
  execFileSync('g++', ['-std=c++17', '-O1', '-Wall', '-o', out, path.join(core, 'tests', `${test}.cc`), ...sources.map((s) => path.join(core, s))]);
  return execFileSync(out, { encoding: 'utf8' });
}

test('page bitmap: page choice and run building agree with the oracle on random layouts', () => {
  expect(buildAndRun('page_bitmap_test', ['page_bitmap.cc', 'errors.cc'])).toContain('PASS');
});

test('PID-namespace helper: CAP_CHECKPOINT_RESTORE alone, no_new_privs, an empty root, out of the tenant\'s reach, and it still places IDs', () => {
  expect(buildAndRun('pid_ns_helper_test', ['pid_ns_helper.cc', 'errors.cc'])).toContain('PASS');
});
