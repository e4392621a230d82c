/**
 * The agent's Prometheus metrics (prom-client), on a registry of its own so that several agents can live
 * in one process (tests). Names follow Prometheus conventions: cryopod_ prefix, _seconds, _bytes, _total.
 */
import * as client from 'prom-client';
import { collectProcessMetrics } from '../kube';

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class AgentMetrics {
  readonly registry = new client.Registry();
  readonly freezeSeconds: client.Histogram;
  readonly dumpSeconds: client.Histogram;
  readonly uploadSeconds: client.Histogram;
  readonly checkpointBytes: client.Counter;
  readonly checkpointPages: client.Counter;
  readonly checkpoints: client.Counter<'result'>;
  readonly downloadSeconds: client.Histogram;
  readonly restoreSeconds: client.Histogram;
  readonly restores: client.Counter<'result'>;

  constructor(node: string) {
    this.registry.setDefaultLabels({ node });
    const registers = [this.registry];
    this.freezeSeconds = new client.Histogram({ name: 'cryopod_freeze_seconds', help: 'Time a checkpointed pod was frozen (its downtime)', buckets: SECONDS_BUCKETS, registers });
    this.dumpSeconds = new client.Histogram({ name: 'cryopod_dump_seconds', help: 'Time to dump a checkpoint into images', buckets: SECONDS_BUCKETS, registers });
    this.uploadSeconds = new client.Histogram({ name: 'cryopod_upload_seconds', help: 'Time to move a checkpoint\'s images to the store', buckets: SECONDS_BUCKETS, registers });
    this.checkpointBytes = new client.Counter({ name: 'cryopod_checkpoint_bytes_total', help: 'Bytes of checkpoint images written', registers });
    this.checkpointPages = new client.Counter({ name: 'cryopod_checkpoint_pages_total', help: 'Memory pages written into checkpoint images', registers });
    this.checkpoints = new client.Counter({ name: 'cryopod_checkpoints_total', help: 'Checkpoints finished by this agent, by result', labelNames: ['result'], registers });
    this.downloadSeconds = new client.Histogram({ name: 'cryopod_download_seconds', help: 'Time to fetch a checkpoint\'s images from the store for a restore (0 for a shared directory)', buckets: SECONDS_BUCKETS, registers });
    this.restoreSeconds = new client.Histogram({ name: 'cryopod_restore_seconds', help: 'Time to verify a checkpoint\'s images and morph the restore pod\'s stubs into its processes', buckets: SECONDS_BUCKETS, registers });
    this.restores = new client.Counter({ name: 'cryopod_restores_total', help: 'Restores finished by this agent, by result', labelNames: ['result'], registers });
    collectProcessMetrics(this.registry, 'cryopod_agent_');
  }
}
