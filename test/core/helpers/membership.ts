/**
 * Helpers for membership-change tests: membership literals, and an additive observer for the
 * in-process Cluster (test/core/helpers/cluster.ts) that sees every command a core emits, so a test
 * can read `configChangeSettled` outcomes (the cluster ignores them) and propose at the moment a
 * leader appends a config entry (the only way to land a proposal inside the joint or final phase,
 * which the cluster otherwise runs through within one delivery loop).
 */
import { expect } from 'chai';
import type { ConfigChangeOutcome, ConfigChangePhase } from '../../../actors/raft/core/config-change';
import type { RaftCore } from '../../../actors/raft/core/core';
import type { Command } from '../../../actors/raft/core/io';
import type { Entry, LogIndex, Membership, NodeId } from '../../../actors/raft/core/types';
import type { Cluster, ClusterNode } from './cluster';
import { n } from './fixtures';

/** A membership literal: voters, non-voters, and (when joint) the new voters. */
export function cfg(voters: readonly number[], nonVoters: readonly number[] = [], after: readonly number[] | null = null): Membership {
  return { members: voters.map(n), nonVoters: nonVoters.map(n), membersAfterConsensus: after === null ? null : after.map(n) };
}

export const ids = (...v: number[]): NodeId[] => v.map(n);

/** A distinct two-byte payload per k, so every proposal is recognisable wherever it is applied. */
export const payload = (k: number): Uint8Array => Uint8Array.of(k >> 8, k & 0xff);
export const payloadNumber = (e: Entry): number | null => (e.kind === 'normal' ? (e.payload[0]! << 8) | e.payload[1]! : null);

/** One entry as a string: equal strings, equal entries (index, term, kind, payload, config). */
export const entryKey = (e: Entry): string => `${e.index}/${e.term}/${e.kind}/${e.kind === 'normal' ? Array.from(e.payload).join('.') : ''}`
  + `${e.kind === 'config' ? JSON.stringify(e.membership) : ''}`;

/**
 * State Machine Safety (paper 5.4.3): every pair of nodes agrees on every index both have applied,
 * and each node applied 1..k without gaps or repeats.
 */
export function expectSameAppliedPrefix(nodes: Iterable<ClusterNode>): void {
  const byIndex = new Map<number, string>();
  for (const node of nodes) {
    node.applied.forEach((e, k) => {
      expect(e.index, `node ${node.id} applied out of order`).to.equal(k + 1);
      const seen = byIndex.get(e.index);
      if (seen === undefined) byIndex.set(e.index, entryKey(e));
      else expect(entryKey(e), `node ${node.id} applied a different entry at ${e.index}`).to.equal(seen);
    });
  }
}

export interface Settled {
  readonly node: NodeId;
  readonly id: number;
  readonly outcome: ConfigChangeOutcome;
}

export interface PhaseProposal {
  readonly node: NodeId;
  /** The leader's change phase right after the config entry was appended ('none': no change of its own). */
  readonly phase: ConfigChangePhase | 'none';
  readonly membership: Membership;
  readonly k: number;
  readonly index: LogIndex;
}

/**
 * Watches the cores of a Cluster by wrapping `takeCommands` (the cluster drains every core through
 * it). Records every `configChangeSettled`, and, with `proposeOnConfigAppend`, proposes one entry
 * on a leader right after it appends a config entry, before anything of that step is executed.
 * Cores replaced by `Cluster.restart` are wrapped on the next `watch()`.
 */
export class ClusterObserver {
  readonly settled: Settled[] = [];
  readonly phaseProposals: PhaseProposal[] = [];
  /** Every role each node has been seen in, checked after every drain. */
  readonly rolesSeen = new Map<NodeId, Set<string>>();
  proposeOnConfigAppend = false;
  /**
   * Called when a leader has just appended a config entry, before the cluster executes anything of
   * that step (so messages it queues can still be cut off by `Cluster.isolate`).
   */
  onLeaderConfigAppend: ((node: ClusterNode, membership: Membership) => void) | null = null;
  private nextK: number;
  private readonly wrapped = new WeakSet<RaftCore>();

  constructor(private readonly cluster: Cluster, firstPayload = 50_000) {
    this.nextK = firstPayload;
    this.watch();
  }

  watch(): void {
    for (const node of this.cluster.nodes.values()) this.wrap(node);
  }

  /**
   * The outcome of change `id` proposed on `node`, or undefined while it is unsettled. Ids count from 1
   * on each core (and again after a restart): pass `since`, the length of `settled` when the change
   * was proposed, to skip the outcomes of earlier changes with the same id.
   */
  outcome(node: number, id: number, since = 0): ConfigChangeOutcome | undefined {
    return this.settled.slice(since).find((s) => s.node === node && s.id === id)?.outcome;
  }

  private wrap(node: ClusterNode): void {
    const core = node.core;
    if (this.wrapped.has(core)) return;
    this.wrapped.add(core);
    const take = core.takeCommands.bind(core);
    core.takeCommands = (): Command[] => {
      const cmds = take();
      const roles = this.rolesSeen.get(node.id) ?? new Set<string>();
      roles.add(core.status().role);
      this.rolesSeen.set(node.id, roles);
      let configAppended = false;
      for (const c of cmds) {
        if (c.type === 'configChangeSettled') this.settled.push({ node: node.id, id: c.id, outcome: c.outcome });
        if (c.type === 'appendLog' && c.truncateFrom === null && c.entries.some((e) => e.kind === 'config')) configAppended = true;
      }
      const st = core.status();
      if (configAppended && st.role === 'Leader') this.onLeaderConfigAppend?.(node, st.membership);
      if (this.proposeOnConfigAppend && configAppended && st.role === 'Leader') {
        const k = this.nextK++;
        // The proposal's commands come out of the next drain, after these: storage still sees
        // appends in the order the core issued them.
        const res = core.propose([payload(k)]);
        this.phaseProposals.push({ node: node.id, phase: st.configChange?.phase ?? 'none', membership: st.membership, k, index: res.firstIndex });
      }
      return cmds;
    };
  }
}
