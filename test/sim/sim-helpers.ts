/** Helpers shared by the simulator's scenario tests. */
import { expect } from 'chai';
import type { NodeId } from '../../actors/raft/core/types';
import { Simulation, type SimulationOptions } from '../../sim/simulation';

/** Runs `fn` on a fresh simulation, checks that no node failed on its own, and always shuts it down. */
export async function withSim<T>(opts: SimulationOptions, fn: (sim: Simulation) => Promise<T>): Promise<T> {
  const sim = await Simulation.create(opts);
  try {
    const out = await fn(sim);
    expect(sim.failures(), 'nodes that failed on their own').to.deep.equal([]);
    return out;
  } finally {
    await sim.shutdown();
  }
}

/** Steps until a leader among `among` exists (virtual `timeoutMs`), and returns it. */
export async function leaderOf(sim: Simulation, among: readonly number[] = sim.ids, timeoutMs = 10_000): Promise<NodeId> {
  await sim.runUntil(() => { const l = sim.leader(); return l !== null && among.includes(l); }, { timeoutMs, what: `a leader among ${among.join(',')}` });
  return sim.leader()!;
}
