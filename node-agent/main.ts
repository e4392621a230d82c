/**
 * Entry point of the node agent (the DaemonSet's command: node dist/node-agent/main.js [flags]; see
 * config.ts). SIGTERM/SIGINT: stop taking work, let the work in flight finish, exit 0; a second signal
 * exits at once (the work left Running is recovered by the next agent on this node).
 */
import { Agent } from './agent';
import { parseConfig } from './config';

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    console.error(`cryopod-agent: ${(err as Error).message}`);
    process.exit(2);
  }
  const agent = new Agent(cfg);
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) {
      console.error(`cryopod-agent: ${sig} again, exiting now`);
      process.exit(1);
    }
    stopping = true;
    console.log(`cryopod-agent: ${sig}: finishing the work in flight`);
    agent.stop().then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`cryopod-agent: stop failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await agent.start();
}

main().catch((err: Error) => {
  console.error(`cryopod-agent: ${err.stack ?? err.message}`);
  process.exit(1);
});
