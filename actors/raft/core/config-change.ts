/**
 * Membership changes (paper section 6; seeds 000 and 004's ProposeConfigChange): what a requested
 * change means for a uniform config, and the configs the leader appends to carry it out.
 *
 * A change runs in phases on the leader (see ConfigChangeStatus):
 *   waiting     until an entry of the leader's own term has committed (the 2015 single-server bug:
 *               a new leader must not append a config before it knows its predecessor's is settled);
 *   catchingUp  new voters are replicated to as non-voters, outside any config entry, until each is
 *               at line rate; only then can they vote without stalling commits;
 *   joint       the leader appends old+new (`membersAfterConsensus` = new voters); from that entry on,
 *               elections and commits need a majority of both;
 *   uniform     once the joint entry commits, the leader appends the new config alone; the change
 *               resolves when that entry commits.
 * A change that only adds or removes non-voters skips straight to `uniform`: quorums do not change.
 */
import { InoperableConfigError, MalformedMessageError, NoopConfigChangeError } from './errors';
import { MAX_CONFIG_NODES, sameNodes } from './membership';
import type { LogIndex, Membership, NodeId } from './types';

/** What the application asks for. Every list is optional; ids must be distinct across lists. */
export interface ConfigChangeRequest {
  /** Nodes to make voters: new nodes, or non-voters to promote. They are caught up first. */
  readonly add?: readonly NodeId[];
  /** Nodes to take out of the config entirely, voters or non-voters. */
  readonly remove?: readonly NodeId[];
  /**
   * Nodes to keep as non-voting learners (read replicas): new nodes, or voters to demote. They get
   * the log, never vote and never count for commit, and stay in the config across leader changes.
   */
  readonly addNonVoters?: readonly NodeId[];
}

/** The uniform config a change leads to. */
export interface ConfigTarget {
  readonly voters: readonly NodeId[];
  readonly nonVoters: readonly NodeId[];
}

export type ConfigChangePhase = 'waiting' | 'catchingUp' | 'joint' | 'uniform';

/** The leader's change in progress, as metrics show it. */
export interface ConfigChangeStatus {
  readonly phase: ConfigChangePhase;
  readonly target: ConfigTarget;
  /** While catchingUp: the new voters not yet at line rate. */
  readonly awaiting: readonly NodeId[];
}

/** How a change ended, handed to whoever proposed it. */
export type ConfigChangeOutcome =
  | { readonly ok: true; readonly index: LogIndex; readonly membership: Membership }
  | { readonly ok: false; readonly error: Error };

const ID_LISTS = ['add', 'remove', 'addNonVoters'] as const;

/**
 * Checks the shape of a request: arrays of valid node ids, no id twice. Throws MalformedMessageError.
 * @example validateConfigChangeRequest({ add: [4], remove: [2] })
 */
export function validateConfigChangeRequest(req: unknown): ConfigChangeRequest {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new MalformedMessageError('a config change must be an object like { add: [4], remove: [2] }');
  const r = req as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!(ID_LISTS as readonly string[]).includes(key)) throw new MalformedMessageError(`unknown config change field '${key}' (expected add, remove, addNonVoters)`);
  }
  const seen = new Map<number, string>();
  const out: Record<string, NodeId[]> = {};
  for (const key of ID_LISTS) {
    const list = r[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new MalformedMessageError(`${key} must be an array of node ids`);
    if (list.length > MAX_CONFIG_NODES) throw new MalformedMessageError(`${key} lists ${list.length} ids; a config holds at most ${MAX_CONFIG_NODES} nodes`);
    for (const id of list) {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new MalformedMessageError(`${key}: bad node id ${String(id)}`);
      const other = seen.get(id);
      if (other !== undefined) throw new MalformedMessageError(other === key ? `node ${id} appears twice in ${key}` : `node ${id} appears in both ${other} and ${key}`);
      seen.set(id, key);
    }
    out[key] = list as NodeId[];
  }
  return out;
}

/**
 * The uniform config `req` leads to from the uniform `current`. Adding what is already there and
 * removing what is not are no-ops, so a retried request is answered NoopConfigChangeError rather
 * than done twice.
 *
 * Throws NoopConfigChangeError when nothing changes; InoperableConfigError when no voter would be
 * left, or a cluster of two or more voters would shrink to one (seed 004: a change "must not leave
 * the cluster in a state where it will have less than two functioning nodes").
 * @example planConfigChange({ members: [1, 2, 3], nonVoters: [], membersAfterConsensus: null }, { add: [4] })
 *   // { voters: [1, 2, 3, 4], nonVoters: [] }
 */
export function planConfigChange(current: Membership, req: ConfigChangeRequest): ConfigTarget {
  if (current.membersAfterConsensus !== null) throw new MalformedMessageError('planConfigChange needs a uniform config');
  const add = req.add ?? [];
  const remove = new Set(req.remove ?? []);
  const demote = new Set(req.addNonVoters ?? []);
  const voters = [...current.members, ...add.filter((id) => !current.members.includes(id))]
    .filter((id) => !remove.has(id) && !demote.has(id));
  const nonVoters = [...current.nonVoters, ...[...demote].filter((id) => !current.nonVoters.includes(id))]
    .filter((id) => !remove.has(id) && !voters.includes(id));
  const target: ConfigTarget = { voters, nonVoters };
  if (sameNodes(voters, current.members) && sameNodes(nonVoters, current.nonVoters)) throw new NoopConfigChangeError(current);
  const after: Membership = { members: voters, nonVoters, membersAfterConsensus: null };
  if (voters.length === 0) throw new InoperableConfigError(after, 'no voter would be left');
  if (voters.length + nonVoters.length > MAX_CONFIG_NODES) throw new InoperableConfigError(after, `${voters.length + nonVoters.length} nodes exceed the limit of ${MAX_CONFIG_NODES}`);
  if (voters.length === 1 && current.members.length >= 2) {
    throw new InoperableConfigError(after, `a cluster of ${current.members.length} voters may not shrink to one: it could no longer survive the loss of any node`);
  }
  return target;
}

/** True when `target` changes who votes, so the change needs joint consensus. */
export function changesVoters(current: Membership, target: ConfigTarget): boolean {
  return !sameNodes(current.members, target.voters);
}

/** New voters that are not voters now: they must reach line rate before the joint config. */
export function newVoters(current: Membership, target: ConfigTarget): NodeId[] {
  return target.voters.filter((id) => !current.members.includes(id));
}

/** Old and new together (paper 6's C_old,new). Non-voters are already those of the target. */
export function jointMembership(current: Membership, target: ConfigTarget): Membership {
  return { members: [...current.members], nonVoters: [...target.nonVoters], membersAfterConsensus: [...target.voters] };
}

/** The config a joint one ends in (C_new). */
export function finalMembership(joint: Membership): Membership {
  if (joint.membersAfterConsensus === null) throw new MalformedMessageError('finalMembership needs a joint config');
  return { members: [...joint.membersAfterConsensus], nonVoters: [...joint.nonVoters], membersAfterConsensus: null };
}

export function uniformMembership(target: ConfigTarget): Membership {
  return { members: [...target.voters], nonVoters: [...target.nonVoters], membersAfterConsensus: null };
}
