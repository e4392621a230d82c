/**
 * The operator process: `node dist/operator/main.js [--flags]` (see config.ts; every flag also reads
 * CRYOPOD_<FLAG> from the environment). SIGTERM/SIGINT stop it gracefully: watches end, reconciles in
 * flight finish, then it exits; a second signal exits at once.
 */
import { parseConfig } from './config';
import { Operator } from './operator';

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv.slice(2), process.env);
  const op = new Operator(cfg, { processMetrics: true });
  await op.start();
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${sig}: stopping`);
    op.stop().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

main().catch((err) => {
  console.error(`cryopod-operator: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
