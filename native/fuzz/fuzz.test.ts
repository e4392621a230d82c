/**
 * The native fuzzers, run briefly in the suite (native/fuzz/run.sh): every committed regression input
 * passes, and each target then runs for FUZZ_SECONDS under ASan and UBSan with its own checks (see each
 * target's header) without a failure. `npm run fuzz` runs them longer.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const FUZZ_SECONDS = 15;
const TARGETS = ['image_layout_fuzz', 'proc_text_fuzz'];

test(`native fuzzers (${TARGETS.join(', ')}): regression inputs pass, then ${FUZZ_SECONDS} s each find nothing`, () => {
  const r = spawnSync('bash', [path.join(__dirname, 'run.sh'), String(FUZZ_SECONDS)], { encoding: 'utf8', timeout: 280_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  expect({ status: r.status, signal: r.signal, out }).toMatchObject({ status: 0, signal: null });
  for (const t of TARGETS) {
    expect(out).toMatch(new RegExp(`fuzz: ${t}: \\d+ regression inputs pass`));
    const runs = Number(new RegExp(`fuzz: ${t}: (\\d+) inputs in`).exec(out)?.[1]);
    // A fuzzer that ran a handful of inputs proves nothing: it must have really run.
    expect(runs).toBeGreaterThan(10_000);
  }
}, 300_000);
