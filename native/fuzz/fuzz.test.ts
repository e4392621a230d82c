/**
 * The native fuzzers, run briefly in the suite (native/fuzz/run.sh): every committed regression input
 * passes, and each target then runs for FUZZ_SECONDS under ASan and UBSan with its reference checks
 * (see each target's header) without a failure. `npm run fuzz` runs them longer.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const FUZZ_SECONDS = 20;

test(`native image-layout fuzzer: regression inputs pass, then ${FUZZ_SECONDS} s of fuzzing find nothing`, () => {
  const r = spawnSync('bash', [path.join(__dirname, 'run.sh'), String(FUZZ_SECONDS)], { encoding: 'utf8', timeout: 240_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  expect({ status: r.status, signal: r.signal, out }).toMatchObject({ status: 0, signal: null });
  expect(out).toMatch(/fuzz: image_layout_fuzz: \d+ regression inputs pass/);
  const runs = Number(/fuzz: image_layout_fuzz: (\d+) inputs in/.exec(out)?.[1]);
  // A fuzzer that ran a handful of inputs proves nothing: it must have really run.
  expect(runs).toBeGreaterThan(10_000);
}, 300_000);
