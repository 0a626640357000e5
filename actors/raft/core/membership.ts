/**
 * Membership as the log defines it (paper 6): a config takes effect as soon as its entry is in a
 * node's log, committed or not, so a truncation that removes a config entry brings back the one before.
 */
import { InoperableConfigError, InvariantViolation } from './errors';
import type { Entry, LogIndex, Membership, NodeId } from './types';

/** Most nodes (voters and non-voters) a config may name: a bound so a typo cannot spawn thousands of streams. */
export const MAX_CONFIG_NODES = 256;

/**
 * The membership of a node that has never seen a config: itself alone. Such a node stays a
 * passive NonVoter until InitWithConfig or a leader's config entry (seeds 000, 004).
 * @example pristineMembership(nodeId(1)) // { members: [1], nonVoters: [], membersAfterConsensus: null }
 */
export function pristineMembership(self: NodeId): Membership {
  return { members: [self], nonVoters: [], membersAfterConsensus: null };
}

/**
 * The membership InitWithConfig forms a cluster with (seed 004: "called with all discovered nodes,
 * including the calling node's ID"). Throws InoperableConfigError when empty, repeating a node, or
 * missing `self`.
 * @example initialMembership(nodeId(1), [nodeId(1), nodeId(2), nodeId(3)])
 */
export function initialMembership(self: NodeId, members: readonly NodeId[]): Membership {
  const membership: Membership = { members: [...members], nonVoters: [], membersAfterConsensus: null };
  if (members.length === 0) throw new InoperableConfigError(membership, 'no members');
  const dup = members.find((m, k) => members.indexOf(m) !== k);
  if (dup !== undefined) throw new InoperableConfigError(membership, `node ${dup} is listed twice`);
  if (!members.includes(self)) throw new InoperableConfigError(membership, `this node (${self}) is not among the members`);
  if (members.length > MAX_CONFIG_NODES) throw new InoperableConfigError(membership, `${members.length} members exceed the limit of ${MAX_CONFIG_NODES}`);
  return membership;
}

/** Every node whose vote counts: the old and, while joint, the new voters, without repeats. */
export function voters(m: Membership): NodeId[] {
  return dedup(m.membersAfterConsensus === null ? m.members : [...m.members, ...m.membersAfterConsensus]);
}

/** @example isVoter(m, nodeId(2)) // true when 2 is in members or membersAfterConsensus */
export function isVoter(m: Membership, id: NodeId): boolean {
  return m.members.includes(id) || (m.membersAfterConsensus?.includes(id) ?? false);
}

/** Seed 000's `is_candidate_unknown` test: a node is known if it is a voter or a non-voter. */
export function isKnown(m: Membership, id: NodeId): boolean {
  return isVoter(m, id) || m.nonVoters.includes(id);
}

/** Who a leader replicates to: every voter and non-voter but itself. */
export function replicationTargets(m: Membership, self: NodeId): NodeId[] {
  return dedup([...voters(m), ...m.nonVoters]).filter((id) => id !== self);
}

export function sameNodes(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((id) => set.has(id));
}

function dedup(ids: readonly NodeId[]): NodeId[] {
  return [...new Set(ids)];
}

interface ConfigAt {
  readonly index: LogIndex;
  readonly membership: Membership;
}

/**
 * The config entries in the log, kept apart from the entry cache so that evicting old entries never
 * loses the membership. `current` is the latest one, or `base` when the log holds none.
 */
export class ConfigHistory {
  private readonly configs: ConfigAt[] = [];

  /** Where `base` came from: 0 for the pristine or InitWithConfig membership, else the config entry a snapshot covered. */
  private baseIndex = 0 as LogIndex;

  /** `base`: the pristine membership, or the one InitWithConfig set in memory. */
  constructor(private base: Membership) {}

  get current(): Membership {
    return this.configs.length === 0 ? this.base : this.configs[this.configs.length - 1]!.membership;
  }

  /** The config in force before `current` (the base membership when there is none). */
  get previous(): Membership {
    return this.configs.length < 2 ? this.base : this.configs[this.configs.length - 2]!.membership;
  }

  /** The index of the entry holding `current`; 0 for the base membership. */
  get currentIndex(): LogIndex {
    return this.configs.length === 0 ? this.baseIndex : this.configs[this.configs.length - 1]!.index;
  }

  /** The config in force at `index` (the latest config entry at or below it, else the base) and its index. */
  at(index: LogIndex): { readonly membership: Membership; readonly index: LogIndex } {
    for (let k = this.configs.length - 1; k >= 0; k--) {
      const c = this.configs[k]!;
      if (c.index <= index) return c;
    }
    return { membership: this.base, index: this.baseIndex };
  }

  /**
   * A snapshot covers everything through `through`: configs at or below it are forgotten, and the
   * one in force there (`membership`, from entry `index`) becomes the base.
   */
  rebase(through: LogIndex, membership: Membership, index: LogIndex): void {
    while (this.configs.length > 0 && this.configs[0]!.index <= through) this.configs.shift();
    this.base = membership;
    this.baseIndex = index;
  }

  setBase(base: Membership): void {
    this.base = base;
  }

  /** Records the config entries among `entries`; true when the membership changed. */
  append(entries: readonly Entry[]): boolean {
    let changed = false;
    for (const e of entries) {
      if (e.kind !== 'config') continue;
      const last = this.configs[this.configs.length - 1];
      if (last !== undefined && last.index >= e.index) throw new InvariantViolation(`config entry ${e.index} appended after config entry ${last.index}`);
      this.configs.push({ index: e.index, membership: e.membership });
      changed = true;
    }
    return changed;
  }

  /** Forgets config entries at index >= `from`; true when the membership changed. */
  truncateFrom(from: LogIndex): boolean {
    let changed = false;
    while (this.configs.length > 0 && this.configs[this.configs.length - 1]!.index >= from) {
      this.configs.pop();
      changed = true;
    }
    return changed;
  }
}
