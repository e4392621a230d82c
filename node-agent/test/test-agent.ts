/**
 * Integration-test helper: an Agent in the test's own process against a test cluster, with fresh storage
 * and state directories, started and ready (its first list done). stop() stops it and removes both.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Agent } from '../agent';
import { waitFor } from '../../testenv';
import { TestCluster } from './test-cluster';

export interface InProcessAgent {
  agent: Agent;
  storageRoot: string;
  stateDir: string;
  stop(): Promise<void>;
}

export async function startInProcessAgent(cluster: TestCluster, nodeName: string, podName: string): Promise<InProcessAgent> {
  const storageRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-images-'));
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-state-'));
  const agent = new Agent(
    { nodeName, podName, storageRoot, stateDir, port: 0, bind: '127.0.0.1', kubeconfig: cluster.agentKubeconfig, freezeMode: 'native', concurrency: 1 },
    { log: () => undefined },
  );
  await agent.start();
  await waitFor('the agent to list its work', () => agent.ready(), 10000);
  return {
    agent,
    storageRoot,
    stateDir,
    stop: async () => {
      await agent.stop();
      for (const d of [storageRoot, stateDir]) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}
