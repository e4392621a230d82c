/**
 * Integration-test helper: the built agent in a child process, so that a test can SIGKILL it: main.js,
 * or, with test hooks, the same Agent and config given them through AgentOverrides (the shipped agent
 * reads no test switch from its environment). A hook with `phaseFd: 3` gets a pipe on the child's fd 3:
 * phaseHook() reads the phases the dump or the restore reaches there and lets it go on with step().
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { TestHooks as DumperHooks } from '../dumper';
import type { RestoreHooks } from '../restore-worker';

const ROOT = path.join(__dirname, '..', '..');

export interface AgentChildOptions {
  kubeconfig: string;
  node: string;
  storageRoot: string;
  stateDir: string;
  logFile: string;
  dumperHooks?: DumperHooks;
  restoreHooks?: RestoreHooks;
}

/** Builds dist/ (tsc emits it even when some other file has type errors) and checks main.js is there. */
export function buildAgent(): boolean {
  try {
    execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', path.join(ROOT, 'tsconfig.json')], { stdio: 'ignore' });
  } catch {
    // checked below
  }
  return fs.existsSync(path.join(ROOT, 'dist', 'node-agent', 'main.js'));
}

export function startAgentChild(o: AgentChildOptions): ChildProcess {
  const dist = path.join(ROOT, 'dist', 'node-agent');
  const dumperHooks = o.dumperHooks ?? {};
  const restoreHooks = o.restoreHooks ?? {};
  const withHooks = `
    const { Agent } = require(${JSON.stringify(path.join(dist, 'agent.js'))});
    const { parseConfig } = require(${JSON.stringify(path.join(dist, 'config.js'))});
    const agent = new Agent(parseConfig(process.argv.slice(1), process.env), { dumperHooks: ${JSON.stringify(dumperHooks)}, restoreHooks: ${JSON.stringify(restoreHooks)} });
    agent.start().catch((err) => { console.error(err); process.exit(1); });`;
  const hooked = Object.keys(dumperHooks).length > 0 || Object.keys(restoreHooks).length > 0;
  const entry = hooked ? ['-e', withHooks, '--'] : [path.join(dist, 'main.js')];
  const out = fs.openSync(o.logFile, 'a');
  const piped = dumperHooks.phaseFd === 3 || restoreHooks.phaseFd === 3;
  const child = spawn(
    process.execPath,
    [...entry, '--node-name', o.node, '--pod-name', 'cryopod-agent-x7k2p', '--storage-root', o.storageRoot, '--state-dir', o.stateDir, '--port', '0', '--bind', '127.0.0.1'],
    { env: { ...process.env, KUBECONFIG: o.kubeconfig }, stdio: ['ignore', out, out, piped ? 'pipe' : 'ignore'] },
  );
  fs.closeSync(out);
  return child;
}

export { phaseHook } from '../../testenv/phase-hook';

/** Resolves once the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
}
