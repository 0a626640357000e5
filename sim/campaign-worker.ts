/** A piscina task: one chaos run, in a worker thread (see campaign.ts). */
import { runChaos, type ChaosOptions, type RunReport } from './chaos';

export default function run(opts: ChaosOptions): Promise<RunReport> {
  return runChaos(opts);
}
